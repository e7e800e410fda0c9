"""The EC2/Eucalyptus image bundle format, free of Twisted (see the image registry issue)."""
