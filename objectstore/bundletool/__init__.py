"""``objectstore-bundle``: make, upload, register, unbundle and delete image bundles.

The euca2ools workflow (euca-bundle-image, euca-upload-bundle, euca-register,
euca-unbundle, euca-delete-bundle) as one tool, speaking the same bundle
format (``images``) and the same APIs: S3 for the bundle's files, the EC2
Query API for registration.
"""
