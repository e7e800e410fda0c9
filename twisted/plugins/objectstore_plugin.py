"""Makes ``twistd objectstore`` find the object store."""

from twisted.application.service import ServiceMaker

objectstore = ServiceMaker(
    "objectstore",
    "objectstore.service",
    "An S3-compatible object store and image registry.",
    "objectstore",
)
