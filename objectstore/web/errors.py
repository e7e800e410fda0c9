"""The one place where errors become S3 XML error documents."""

from twisted.logger import Logger

from objectstore import xmlio
from objectstore.errors import InternalError, S3Error

log = Logger()


def error_document(error, resource, request_id):
    root = xmlio.element("Error", ns=None)
    xmlio.sub(root, "Code", error.code)
    xmlio.sub(root, "Message", error.message)
    for name, value in error.details.items():
        xmlio.sub(root, name, str(value))
    xmlio.sub(root, "Resource", resource)
    xmlio.sub(root, "RequestId", request_id)
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


def _resource(request):
    path = request.uri.split(b"?", 1)[0]
    return path.decode("utf-8", "replace")
