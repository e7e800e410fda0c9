"""The S3 errors every layer may raise.

Storage, auth and the web edge all raise these; only ``objectstore.web.errors``
turns them into the XML error document, so the wire format lives in one place.
"""

from typing import Any, Optional


class S3Error(Exception):
    """An error with S3's code, HTTP status and message."""

    code = "InternalError"
    status = 500
    message = "We encountered an internal error. Please try again."
    # Response headers the error carries (InvalidRange's Content-Range).
    headers: dict = {}

    def __init__(self, message: Optional[str] = None, **details: Any) -> None:
        self.message = message or self.message
        # Extra elements AWS puts in the error document (BucketName, Key, ...).
        self.details = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


def _error(code: str, status: int, message: str) -> type[S3Error]:

    return type(code, (S3Error,), {"code": code, "status": status, "message": message})


InternalError = _error("InternalError", 500, S3Error.message)
NotImplementedOperation = _error(
    "NotImplemented", 501, "A header you provided implies functionality that is not implemented."
)
MethodNotAllowed = _error("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
AccessDenied = _error("AccessDenied", 403, "Access Denied")
InvalidAccessKeyId = _error(
    "InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."
)
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
InvalidURI = _error("InvalidURI", 400, "Couldn't parse the specified URI.")
MalformedXML = _error(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema.",
)
IncompleteBody = _error(
    "IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header."
)
MissingContentLength = _error("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
EntityTooLarge = _error("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified was invalid.")
BadDigest = _error("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long")
InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchVersion = _error("NoSuchVersion", 404, "The specified version does not exist.")
BucketAlreadyExists = _error(
    "BucketAlreadyExists",
    409,
    "The requested bucket name is not available. The bucket namespace is shared by all users "
    "of the system. Please select a different name and try again.",
)
BucketAlreadyOwnedByYou = _error(
    "BucketAlreadyOwnedByYou",
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
)
BucketNotEmpty = _error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")
PreconditionFailed = _error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
NoSuchBucketPolicy = _error("NoSuchBucketPolicy", 404, "The bucket policy does not exist")
NoSuchCORSConfiguration = _error("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist")
NoSuchLifecycleConfiguration = _error("NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist")
NoSuchTagSet = _error("NoSuchTagSet", 404, "The TagSet does not exist")
InvalidTag = _error("InvalidTag", 400, "The tag provided was not a valid tag.")
NoSuchWebsiteConfiguration = _error(
    "NoSuchWebsiteConfiguration", 404, "The specified bucket does not have a website configuration"
)
NoSuchPublicAccessBlockConfiguration = _error(
    "NoSuchPublicAccessBlockConfiguration", 404, "The public access block configuration was not found"
)
OwnershipControlsNotFoundError = _error(
    "OwnershipControlsNotFoundError", 404, "The bucket ownership controls were not found"
)
ServerSideEncryptionConfigurationNotFoundError = _error(
    "ServerSideEncryptionConfigurationNotFoundError",
    404,
    "The server side encryption configuration was not found",
)
InvalidLocationConstraint = _error("InvalidLocationConstraint", 400, "The specified location-constraint is not valid")
IllegalLocationConstraintException = _error(
    "IllegalLocationConstraintException",
    400,
    "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.",
)
SlowDown = _error("SlowDown", 503, "Please reduce your request rate.")
RequestTimeout = _error(
    "RequestTimeout",
    400,
    "Your socket connection to the server was not read from or written to within the timeout period."
    " Idle connections will be closed.",
)
RequestHeaderSectionTooLarge = _error(
    "RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size."
)
BadRequest = _error("BadRequest", 400, "An error occurred when parsing the HTTP request.")
StorageFull = _error("XObjectstoreStorageFull", 507, "Storage backend has reached its minimum free drive threshold.")
# Bit rot found in an object's (or image's) stored bytes: they are never served
# again, and retrying cannot help (see storage/integrity.py).
ObjectDamaged = _error(
    "XObjectstoreObjectDamaged",
    500,
    "The stored bytes of this object fail the checksum recorded when they were written, so they are not served."
    " Delete or overwrite it (from a backup, say).",
)
ObjectLockConfigurationNotFoundError = _error(
    "ObjectLockConfigurationNotFoundError", 404, "Object Lock configuration does not exist for this bucket"
)
ReplicationConfigurationNotFoundError = _error(
    "ReplicationConfigurationNotFoundError", 404, "The replication configuration was not found"
)
MetadataTooLarge = _error("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.")
MalformedTrailerError = _error(
    "MalformedTrailerError",
    400,
    "The request contained trailing data that was not well-formed or did not conform to our published schema.",
)
MalformedACLError = _error(
    "MalformedACLError",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema",
)
UnresolvableGrantByEmailAddress = _error(
    "UnresolvableGrantByEmailAddress", 400, "The e-mail address you provided does not match any account on record."
)
UnexpectedContent = _error("UnexpectedContent", 400, "This request does not support content")
MissingSecurityHeader = _error("MissingSecurityHeader", 400, "Your request was missing a required header")
OperationAborted = _error(
    "OperationAborted", 409, "A conflicting conditional operation is currently in progress against this resource."
)
NoSuchUpload = _error(
    "NoSuchUpload",
    404,
    "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload "
    "might have been aborted or completed.",
)
InvalidPart = _error(
    "InvalidPart",
    400,
    "One or more of the specified parts could not be found.  The part may not have been uploaded, or the "
    "specified entity tag may not match the part's entity tag.",
)
InvalidPartOrder = _error(
    "InvalidPartOrder",
    400,
    "The list of parts was not in ascending order. Parts must be ordered by part number.",
)
EntityTooSmall = _error("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.")
InvalidPartNumber = _error("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")

# The image registry's errors carry EC2's codes: the same errors reach EC2
# clients through the Query API and nova-style clients through /_images.
ImageNotFound = _error("InvalidAMIID.NotFound", 404, "The image id does not exist.")
MalformedImageId = _error("InvalidAMIID.Malformed", 400, "The image id is malformed.")
ImageIdInUse = _error("InvalidAMIID.Duplicate", 409, "An image with this id is already registered.")
InvalidManifest = _error("InvalidManifest", 400, "The manifest could not be read as an image bundle manifest.")
IncorrectImageState = _error("IncorrectState", 409, "The image is not available.")
InvalidParameterValue = _error("InvalidParameterValue", 400, "A parameter has an invalid value.")
MissingParameter = _error("MissingParameter", 400, "A required parameter is missing.")
InvalidAction = _error("InvalidAction", 400, "The action is not valid for this web service.")
AuthFailure = _error("AuthFailure", 401, "AWS was not able to validate the provided access credentials.")
ServiceUnavailable = _error("ServiceUnavailable", 503, "Please reduce your request rate.")
