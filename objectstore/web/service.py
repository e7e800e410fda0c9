"""The service (``/``): ListBuckets."""

from objectstore import xmlio
from objectstore.web.access import require_user
from objectstore.web.formats import iso8601, owner_element
from objectstore.web.resource import S3Resource, operation, send_xml


class ServiceResource(S3Resource):
    resource_type = "SERVICE"

    @operation("GET")
    async def list_buckets(self, request):
        user = require_user(request)
        # Admins run the cloud: they see every bucket.
        buckets = self.store.list_buckets(owner=None if user.admin else user.id)
        root = xmlio.element("ListAllMyBucketsResult")
        owner_element(root, user.id, self.app.credentials)
        listed = xmlio.sub(root, "Buckets")
        for bucket in buckets:
            entry = xmlio.sub(listed, "Bucket")
            xmlio.sub(entry, "Name", bucket.name)
            xmlio.sub(entry, "CreationDate", iso8601(bucket.created))
        send_xml(request, root)
