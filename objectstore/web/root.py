"""S3: the root resource. Finds the bucket and key a request is about.

Keys are taken from the raw request path (Twisted would split them on
``/`` and unquote the pieces, losing ``//`` and ``%2F``); with ``--domain``,
``BUCKET.DOMAIN`` hosts address the bucket virtual-host style.
"""

from urllib.parse import unquote_to_bytes

from twisted.web.resource import Resource

from objectstore.auth.authenticate import UNAUTHENTICATED, Authenticator
from objectstore.auth.credentials import ANONYMOUS
from objectstore.auth.ec2 import Ec2Authenticator
from objectstore.storage.contract import ObjectStore
from objectstore.storage.names import check_key, decode_key
from objectstore.web.bucket import BucketResource
from objectstore.web.ec2 import Ec2Resource, is_ec2_path
from objectstore.web.images import image_resource
from objectstore.web.object import ObjectResource
from objectstore.web.service import ServiceResource

# The image API's path: no bucket can have this name (see storage/names.py).
IMAGES_PATH = "_images"


class S3(Resource):
    def __init__(self, store: ObjectStore, credentials, config, registrar=None):
        super().__init__()
        self.store = store
        self.registrar = registrar
        self.credentials = credentials
        self.config = config
        self.authenticator = Authenticator(credentials, config.region, strict_region=config.strict_region)
        self.ec2_authenticator = Ec2Authenticator(credentials, config.region, strict_region=config.strict_region)
        self.service = ServiceResource(self)

    def getChildWithDefault(self, name, request):
        return self.resourceFor(request)

    def resourceFor(self, request):
        """The leaf resource for *request*; also settles who is calling."""
        if is_ec2_path(request.path):
            # Signed differently, and maybe in the form body: the resource checks it once the body is in.
            request.api = "ec2"
            request.auth, request.caller = UNAUTHENTICATED, ANONYMOUS
            return Ec2Resource(self)
        host_bucket = self.virtual_host_bucket(request)
        request.auth = self.identify(request, host_bucket)
        request.caller = request.auth.caller
        bucket, raw_key = self.target(request, host_bucket)
        if bucket == IMAGES_PATH:
            images = image_resource(self, request)
            if images is not None:
                return images
        if bucket is None:
            return self.service
        if raw_key is None:
            request.bucket_name = bucket
            return BucketResource(self, bucket)
        key = check_key(decode_key(raw_key))
        request.bucket_name, request.key = bucket, key
        return ObjectResource(self, bucket, key)

    def identify(self, request, host_bucket):
        return self.authenticator.authenticate(request, bucket_in_host=host_bucket)

    def target(self, request, host_bucket):
        """(bucket or None, raw key bytes or None) from the path and *host_bucket* (see virtual_host_bucket)."""
        path = request.path
        bucket = host_bucket
        if bucket is not None:
            raw_key = unquote_to_bytes(path[1:]) if len(path) > 1 else None
            return bucket, raw_key
        name, slash, rest = path[1:].partition(b"/")
        if not name:
            return None, None
        bucket = unquote_to_bytes(name).decode("utf-8", "replace")
        raw_key = unquote_to_bytes(rest) if rest else None
        return bucket, raw_key

    def virtual_host_bucket(self, request):
        """The bucket a ``BUCKET.DOMAIN`` Host header names (with ``--domain``); else None."""
        domain = self.config.domain
        if not domain:
            return None
        host = request.getHeaderText(b"Host")
        if not host:
            return None
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        host = host.lower().rstrip(".")
        suffix = "." + domain.lower()
        if host.endswith(suffix) and len(host) > len(suffix):
            return host[: -len(suffix)]
        return None
