"""The service (``/``): ListBuckets, whole or in pages (``max-buckets``, ``continuation-token``, ``prefix``)."""

from objectstore import xmlio
from objectstore.errors import InvalidArgument
from objectstore.web.access import require_user
from objectstore.web.formats import iso8601, owner_element
from objectstore.web.listing import decode_token, encode_token
from objectstore.web.resource import S3Resource, arg, operation, send_xml

MAX_BUCKETS = 10000


def max_buckets_of(request):
    """``max-buckets``: None for all of them (the answer of a ListBuckets without paging)."""
    text = arg(request, "max-buckets")
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_BUCKETS:
        raise InvalidArgument(
            f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}",
            ArgumentName="max-buckets",
            ArgumentValue=text,
        )
    return value


class ServiceResource(S3Resource):
    resource_type = "SERVICE"

    @operation("GET")
    async def list_buckets(self, request):
        user = require_user(request)
        max_buckets = max_buckets_of(request)
        prefix = arg(request, "prefix", "")
        region = arg(request, "bucket-region")
        token = arg(request, "continuation-token")
        after = decode_token(token) if token else ""
        # Admins run the cloud: they see every bucket.
        buckets = [
            bucket
            for bucket in self.store.list_buckets(owner=None if user.admin else user.id)
            if bucket.name > after and bucket.name.startswith(prefix) and region in (None, bucket.region)
        ]
        more = max_buckets is not None and len(buckets) > max_buckets
        if more:
            buckets = buckets[:max_buckets]
        root = xmlio.element("ListAllMyBucketsResult")
        owner_element(root, user.id, self.app.credentials)
        listed = xmlio.sub(root, "Buckets")
        for bucket in buckets:
            entry = xmlio.sub(listed, "Bucket")
            xmlio.sub(entry, "Name", bucket.name)
            xmlio.sub(entry, "CreationDate", iso8601(bucket.created))
            if max_buckets is not None:
                xmlio.sub(entry, "BucketRegion", bucket.region)  # paged answers name it, as AWS's do
        if more:
            xmlio.sub(root, "ContinuationToken", encode_token(buckets[-1].name))
        if arg(request, "prefix") is not None:
            xmlio.sub(root, "Prefix", prefix)
        send_xml(request, root)
