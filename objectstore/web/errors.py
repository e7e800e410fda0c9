"""The one place where errors become S3 XML error documents."""

import re

from twisted.logger import Logger
from twisted.web.http import RESPONSES

from objectstore import xmlio
from objectstore.errors import InternalError, S3Error
from objectstore.web.stamp import http_date_now, new_request_id

log = Logger()
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def error_document(error, resource, request_id):
    root = xmlio.element("Error", ns=None)
    xmlio.sub(root, "Code", error.code)
    xmlio.sub(root, "Message", error.message)
    for name, value in error.details.items():
        # A detail echoes what the client sent, which may hold characters XML cannot.
        xmlio.sub(root, name, _XML_UNSAFE.sub("\ufffd", str(value)))
    xmlio.sub(root, "Resource", resource)
    xmlio.sub(root, "RequestId", request_id)
    # As AWS, the x-amz-id-2 value, which this server makes its request id too (S3Request._stamp).
    xmlio.sub(root, "HostId", request_id)
    return xmlio.to_bytes(root)


# S3's codes for failures both APIs share, as EC2 names them (and the
# status EC2 answers them with).
EC2_CODES = {
    "SignatureDoesNotMatch": ("AuthFailure", 401),
    "InvalidAccessKeyId": ("AuthFailure", 401),
    "RequestTimeTooSkewed": ("AuthFailure", 401),
    "AccessDenied": ("UnauthorizedOperation", 403),
    "AuthorizationHeaderMalformed": ("AuthFailure", 401),
    "AuthorizationQueryParametersError": ("AuthFailure", 401),
    "NoSuchKey": ("InvalidManifest", 400),
    "NoSuchBucket": ("InvalidManifest", 400),
    "MethodNotAllowed": ("InvalidAction", 400),
}


def ec2_error_document(error, request_id):
    """EC2's error form: Response/Errors/Error with Code and Message, then RequestID."""
    code, _ = EC2_CODES.get(error.code, (error.code, error.status))
    root = xmlio.element("Response", ns=None)
    error_element = xmlio.sub(xmlio.sub(root, "Errors"), "Error")
    xmlio.sub(error_element, "Code", code)
    xmlio.sub(error_element, "Message", error.message)
    xmlio.sub(root, "RequestID", request_id)
    return xmlio.to_bytes(root)


def as_s3_error(failure, request):
    """The S3Error a failure means; anything unexpected is logged as InternalError."""
    if failure.check(S3Error):
        return failure.value
    log.failure(
        "Unexpected error handling {method} {path} (request {request_id})",
        failure=failure,
        method=request.method.decode("latin-1"),
        path=request.path.decode("latin-1", "replace"),
        request_id=request.request_id,
    )
    return InternalError()


def write_error(request, error):
    """Answer *request* with *error* (an S3Error) unless it is already answered."""
    if request.finished or request._disconnected:
        return
    if request.startedWriting:
        # Headers are gone: the only honest signal left is a cut connection.
        request.channel.transport.abortConnection()
        return
    if getattr(request, "api", None) == "ec2":
        body = ec2_error_document(error, request.request_id)
        request.setResponseCode(EC2_CODES.get(error.code, (None, error.status))[1])
    else:
        body = error_document(error, _resource(request), request.request_id)
        request.setResponseCode(error.status)
    for name in (b"ETag", b"Last-Modified", b"Content-Range", b"Accept-Ranges"):
        request.responseHeaders.removeHeader(name)
    for name, value in error.headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    request.setHeader(b"Content-Type", b"application/xml")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)  # Twisted sends no body for HEAD
    request.finish()


def connection_answer(error: S3Error, resource: str = "/") -> bytes:
    """A whole HTTP/1.1 answer of *error* that closes the connection: for the channel to send itself.

    The channel answers so where no Request can: headers it cannot parse,
    a connection over the caps, a body that stalls.
    """
    request_id = new_request_id().encode()
    body = error_document(error, resource, request_id.decode())
    reason = RESPONSES.get(error.status, b"Error")
    head = (
        b"HTTP/1.1 %d %s\r\nServer: objectstore\r\nDate: %s\r\nx-amz-request-id: %s\r\nx-amz-id-2: %s\r\n"
        b"Content-Type: application/xml\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    ) % (error.status, reason, http_date_now(), request_id, request_id, len(body))
    return head + body


def _resource(request):
    path = request.uri.split(b"?", 1)[0]
    return path.decode("utf-8", "replace")
