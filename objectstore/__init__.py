"""objectstore: an S3-compatible object store and machine-image registry on Twisted."""

__version__ = "0.1.0"
