"""S3Resource: a leaf resource whose operations are declared, not if-chained.

Each operation is an ``async`` method marked with ``@operation(METHOD,
subresource)``. The request is matched to one before its body arrives, so
the operation can say what its body is written to (``receive``).
"""

from twisted.internet.defer import ensureDeferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from objectstore import xmlio
from objectstore.errors import MethodNotAllowed, NotImplementedOperation
from objectstore.web.access import require_expected_owner
from objectstore.web.body import BufferedBody
from objectstore.web.errors import as_s3_error, write_error
from objectstore.web.received import Received
from objectstore.web.upload_input import copy_source

# Query parameters that name a sub-resource (an operation other than the
# plain one), in the order they decide when several are present.
SUBRESOURCES = (
    "uploadId",
    "uploads",
    "partNumber",
    "delete",
    "acl",
    "location",
    "versioning",
    "versions",
    "policy",
    "policyStatus",
    "cors",
    "lifecycle",
    "requestPayment",
    "publicAccessBlock",
    "ownershipControls",
    "tagging",
    "website",
    "logging",
    "encryption",
    "notification",
    "replication",
    "accelerate",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "object-lock",
    "retention",
    "legal-hold",
    "torrent",
    "restore",
    "select",
    "attributes",
)

_SUBRESOURCE_RANK = {name.encode(): rank for rank, name in enumerate(SUBRESOURCES)}


def _subresource_of(args):
    """The deciding sub-resource among the query's names (most queries have none)."""
    named = [name for name in args if name in _SUBRESOURCE_RANK]
    if not named:
        return None
    return min(named, key=_SUBRESOURCE_RANK.__getitem__).decode()


# Small bodies (XML documents) of operations that do not declare one.
DEFAULT_BODY_LIMIT = 64 * 1024


def operation(method, subresource=None):
    """Mark an async method as the handler of ``METHOD [?subresource]``."""

    def mark(handler):
        handler.s3_operation = (method.encode(), subresource)
        return handler

    return mark


class S3Resource(Resource):
    isLeaf = True
    named_bucket = None  # the bucket the request names, if any

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.operations = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                key = getattr(attr, "s3_operation", None)
                if key is not None:
                    cls.operations[key] = attr

    def __init__(self, app):
        super().__init__()
        self.app = app

    @property
    def store(self):
        return self.app.store

    def prepare(self, request, length):
        """Pick the operation; let it choose where the body goes."""
        subresource = _subresource_of(request.args)
        method = request.method
        if method == b"HEAD" and (method, subresource) not in self.operations:
            method = b"GET"  # Twisted drops the body of a HEAD answer
        handler = self.operations.get((method, subresource))
        if handler is None:
            if subresource is not None and any(m == method for m, _ in self.operations):
                raise NotImplementedOperation(f"The ?{subresource} operation is not implemented.")
            raise MethodNotAllowed(Method=request.method.decode("latin-1"), ResourceType=self.resource_type)
        request.operation = handler
        self._check_expected_owners(request, handler)
        receive = getattr(self, "receive_" + handler.__name__, None)
        default = Received.of_document
        request.received = receive(request, length) if receive else default(BufferedBody(DEFAULT_BODY_LIMIT))

    def _check_expected_owners(self, request, handler):
        """x-amz-expected-bucket-owner (and, for a copy, x-amz-source-expected-bucket-owner), before the body."""
        if handler.__name__ != "create_bucket":  # CreateBucket takes no expected owner
            require_expected_owner(request, self.store, self.named_bucket)
        source = request.getHeader(b"x-amz-copy-source")
        if source is not None and request.getHeader(b"x-amz-source-expected-bucket-owner") is not None:
            bucket, _ = copy_source(source)
            require_expected_owner(request, self.store, bucket, b"x-amz-source-expected-bucket-owner")

    def render(self, request):
        ensureDeferred(self._answer(request))
        return NOT_DONE_YET

    async def _answer(self, request):
        try:
            await request.operation(self, request)
        except BaseException:  # noqa: B036 - every failure becomes an S3 error document
            write_error(request, as_s3_error(Failure(), request))


def arg(request, name, default=None):
    """A query parameter as text (the last one wins, like S3)."""
    values = request.args.get(name.encode())
    if not values:
        return default
    return values[-1].decode("utf-8", "replace")


def client_gone(request):
    """The client hung up while the operation worked: there is no one left to answer.

    Not an error: the operation's effect stands (S3 keeps a PUT whose client
    vanished after sending the whole body), only the answer is dropped.
    """
    return request._disconnected


def send_xml(request, root, status=200):
    if client_gone(request):
        return
    body = xmlio.to_bytes(root)
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/xml")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.write(body)
    request.finish()


def send_empty(request, status=200):
    if client_gone(request):
        return
    request.setResponseCode(status)
    request.setHeader(b"Content-Length", b"0")
    request.finish()
