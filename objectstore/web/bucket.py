"""BucketResource: operations on ``/bucket``."""

import re

from objectstore import xmlio
from objectstore.auth import acl as acls
from objectstore.errors import (
    BucketAlreadyOwnedByYou,
    InvalidLocationConstraint,
    MalformedACLError,
    MalformedXML,
    NoSuchBucket,
    NoSuchBucketPolicy,
    NoSuchCORSConfiguration,
    NoSuchLifecycleConfiguration,
    NoSuchPublicAccessBlockConfiguration,
    NoSuchTagSet,
    NoSuchVersion,
    NoSuchWebsiteConfiguration,
    ObjectLockConfigurationNotFoundError,
    OwnershipControlsNotFoundError,
    ReplicationConfigurationNotFoundError,
    S3Error,
    ServerSideEncryptionConfigurationNotFoundError,
)
from objectstore.storage.names import check_bucket_name, check_key
from objectstore.web import listing, tagging, versions
from objectstore.web.access import require, require_owner, require_user
from objectstore.web.acl_input import ACL_BODY_LIMIT, acl_from_headers, acl_headers, requested_policy
from objectstore.web.body import BufferedBody, parse_content_md5
from objectstore.web.formats import acl_document
from objectstore.web.multipart import list_multipart_uploads
from objectstore.web.received import Received
from objectstore.web.resource import S3Resource, arg, operation, send_empty, send_xml

DELETE_BODY_LIMIT = 2 * 1024 * 1024
# What AWS names regions with (eu-west-1, us-gov-west-1, and the legacy "EU").
_REGION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
MAX_DELETE_KEYS = 1000
US_EAST_1 = "us-east-1"


class BucketResource(S3Resource):
    resource_type = "BUCKET"

    def __init__(self, app, name):
        super().__init__(app)
        self.name = self.named_bucket = name

    def bucket(self, request, permission=None):
        bucket = self.store.get_bucket(self.name)
        if permission is not None:
            require(request, bucket.acl, permission)
        return bucket

    def owned_bucket(self, request):
        bucket = self.store.get_bucket(self.name)
        require_owner(request, bucket.owner)
        return bucket

    # -- the bucket itself -------------------------------------------------

    @operation("PUT")
    async def create_bucket(self, request):
        user = require_user(request)
        check_bucket_name(self.name)
        region = self._location(request.received.document_bytes())
        acl = acl_from_headers(acl_headers(request), user.id, self.app.credentials) or acls.canned("private", user.id)
        try:
            await self.store.create_bucket(self.name, user.id, region, acl)
        except BucketAlreadyOwnedByYou:
            await self._recreate_in_us_east_1(region, acl)
        request.setHeader(b"Location", b"/" + self.name.encode())
        send_empty(request)

    async def _recreate_in_us_east_1(self, region, acl):
        """Your own bucket created again: 200 and its ACL reset in us-east-1, as S3 answers there for
        legacy compatibility; BucketAlreadyOwnedByYou (409) in any other region. Its objects stay."""
        try:
            existing = self.store.get_bucket(self.name)
            if existing.region != US_EAST_1 or region != US_EAST_1:
                raise BucketAlreadyOwnedByYou(BucketName=self.name)
            await self.store.set_bucket_acl(self.name, acl)
        except NoSuchBucket:
            # Deleted since: this request creates it after all (or meets whoever made it first).
            await self.store.create_bucket(self.name, acl["owner"], region, acl)

    def _location(self, body):
        """The region a new bucket is in: the one its CreateBucketConfiguration asks for, or the server's.

        With --strict-region only the server's own region may be asked for;
        otherwise any (the server has one endpoint, and reports each bucket
        in the region it was created for, as GetBucketLocation does on AWS).
        """
        region = self.app.config.region
        if not body.strip():
            return region
        root = xmlio.parse(body, max_length=64 * 1024)
        if xmlio.local(root) != "CreateBucketConfiguration":
            raise MalformedXML()
        constraint = xmlio.child_text(root, "LocationConstraint")
        if not constraint:
            return region
        if self.app.config.strict_region and constraint != region:
            raise InvalidLocationConstraint(
                f"The specified location-constraint is not valid; this server serves {region}.",
                LocationConstraint=constraint,
            )
        if not _REGION_NAME.fullmatch(constraint):
            raise InvalidLocationConstraint(
                "The specified location-constraint is not valid.", LocationConstraint=constraint
            )
        return constraint

    @operation("HEAD")
    async def head_bucket(self, request):
        bucket = self.bucket(request, acls.READ)
        request.setHeader(b"x-amz-bucket-region", bucket.region.encode())
        send_empty(request)

    @operation("DELETE")
    async def delete_bucket(self, request):
        self.owned_bucket(request)
        await self.store.delete_bucket(self.name)
        send_empty(request, 204)

    # -- listing -----------------------------------------------------------

    def _listing_of(self, request):
        """(prefix, delimiter, max-keys) of a listing the caller may make; bad arguments refused before the scan."""
        self.bucket(request, acls.READ)
        max_keys = listing.max_keys_of(request)
        listing.encoder_of(request)
        return arg(request, "prefix", ""), arg(request, "delimiter", ""), max_keys

    @operation("GET")
    async def list_objects(self, request):
        prefix, delimiter, max_keys = self._listing_of(request)
        credentials = self.app.credentials
        if arg(request, "list-type") == "2":
            token = arg(request, "continuation-token")
            start_after = arg(request, "start-after", "")
            # An empty token is none at all (AWS lists from the start, and echoes it).
            after = listing.decode_token(token) if token else start_after
            page = await self.store.list_objects(self.name, prefix, delimiter, after, max_keys)
            fetch_owner = arg(request, "fetch-owner", "false").lower() == "true"
            document = listing.v2_document(
                request,
                self.name,
                page,
                prefix,
                delimiter,
                start_after,
                token,
                max_keys,
                fetch_owner,
                credentials,
            )
        else:
            marker = arg(request, "marker", "")
            page = await self.store.list_objects(self.name, prefix, delimiter, marker, max_keys)
            document = listing.v1_document(request, self.name, page, prefix, delimiter, marker, max_keys, credentials)
        send_xml(request, document)

    @operation("GET", "versions")
    async def list_object_versions(self, request):
        prefix, delimiter, max_keys = self._listing_of(request)
        key_marker, version_marker, after = versions.versions_start(request)
        page = await self.store.list_objects(self.name, prefix, delimiter, after, max_keys)
        document = versions.versions_document(
            request, self.name, page, prefix, delimiter, key_marker, version_marker, max_keys, self.app.credentials
        )
        send_xml(request, document)

    # -- DeleteObjects -----------------------------------------------------

    def receive_delete_objects(self, request, length):
        content_md5 = parse_content_md5(request.getHeaderText(b"Content-MD5"))
        return Received.of_document(BufferedBody(DELETE_BODY_LIMIT, content_md5=content_md5))

    @operation("POST", "delete")
    async def delete_objects(self, request):
        self.bucket(request, acls.WRITE)
        root = xmlio.parse(request.received.document_bytes(), DELETE_BODY_LIMIT)
        if xmlio.local(root) != "Delete":
            raise MalformedXML()
        quiet = (xmlio.child_text(root, "Quiet", "false") or "").strip().lower() == "true"
        objects = xmlio.children(root, "Object")
        if not objects or len(objects) > MAX_DELETE_KEYS:
            raise MalformedXML()
        keys, versions_named, errors = [], {}, []
        for element in objects:
            key = xmlio.child_text(element, "Key")
            if key is None:
                raise MalformedXML()
            version = xmlio.child_text(element, "VersionId")
            try:
                checked = check_key(key)
                if version is not None and version != versions.NULL_VERSION:
                    raise NoSuchVersion()  # a never-versioned bucket has only the null version
            except S3Error as e:
                errors.append((key, version, e))
                continue
            keys.append(checked)
            versions_named[checked] = version
        await self.store.delete_objects(self.name, keys)
        result = xmlio.element("DeleteResult")
        if not quiet:
            for key in keys:
                deleted = xmlio.sub(result, "Deleted")
                xmlio.sub(deleted, "Key", key)
                if versions_named[key] is not None:
                    xmlio.sub(deleted, "VersionId", versions_named[key])
        for key, version, error in errors:
            entry = xmlio.sub(result, "Error")
            xmlio.sub(entry, "Key", key)
            if version is not None:
                xmlio.sub(entry, "VersionId", version)
            xmlio.sub(entry, "Code", error.code)
            xmlio.sub(entry, "Message", error.message)
        send_xml(request, result)

    # -- sub-resources -----------------------------------------------------

    @operation("GET", "location")
    async def get_location(self, request):
        bucket = self.owned_bucket(request)
        # us-east-1 is the one region S3 reports as an empty constraint.
        region = "" if bucket.region == "us-east-1" else bucket.region
        send_xml(request, xmlio.element("LocationConstraint", region or None))

    @operation("GET", "acl")
    async def get_acl(self, request):
        bucket = self.bucket(request, acls.READ_ACP)
        send_xml(request, acl_document(bucket.acl, self.app.credentials))

    def receive_put_acl(self, request, length):
        # Refused before the document is read when the caller may not change the ACL.
        self.bucket(request, acls.WRITE_ACP)
        content_md5 = parse_content_md5(request.getHeaderText(b"Content-MD5"))
        return Received.of_document(BufferedBody(ACL_BODY_LIMIT, too_large=MalformedACLError, content_md5=content_md5))

    @operation("PUT", "acl")
    async def put_acl(self, request):
        bucket = self.bucket(request, acls.WRITE_ACP)
        acl = requested_policy(request, bucket.owner, self.app.credentials)
        await self.store.set_bucket_acl(self.name, acl)
        send_empty(request)

    @operation("GET", "versioning")
    async def get_versioning(self, request):
        self.owned_bucket(request)
        send_xml(request, xmlio.element("VersioningConfiguration"))

    @operation("GET", "requestPayment")
    async def get_request_payment(self, request):
        self.owned_bucket(request)
        send_xml(request, xmlio.element("RequestPaymentConfiguration", xmlio.element("Payer", "BucketOwner")))

    @operation("GET", "logging")
    async def get_logging(self, request):
        self.owned_bucket(request)
        send_xml(request, xmlio.element("BucketLoggingStatus"))

    @operation("GET", "notification")
    async def get_notification(self, request):
        self.owned_bucket(request)
        send_xml(request, xmlio.element("NotificationConfiguration"))

    @operation("GET", "accelerate")
    async def get_accelerate(self, request):
        self.owned_bucket(request)
        send_xml(request, xmlio.element("AccelerateConfiguration"))

    @operation("GET", "uploads")
    async def list_uploads(self, request):
        self.bucket(request, acls.READ)
        send_xml(request, await list_multipart_uploads(self.store, self.app.credentials, request, self.name))

    def _not_configured(error):
        async def answer(self, request):
            self.owned_bucket(request)
            raise error(BucketName=self.name)

        return answer

    get_policy = operation("GET", "policy")(_not_configured(NoSuchBucketPolicy))
    get_policy_status = operation("GET", "policyStatus")(_not_configured(NoSuchBucketPolicy))
    get_cors = operation("GET", "cors")(_not_configured(NoSuchCORSConfiguration))
    get_lifecycle = operation("GET", "lifecycle")(_not_configured(NoSuchLifecycleConfiguration))
    get_public_access_block = operation("GET", "publicAccessBlock")(
        _not_configured(NoSuchPublicAccessBlockConfiguration)
    )
    get_ownership_controls = operation("GET", "ownershipControls")(_not_configured(OwnershipControlsNotFoundError))

    @operation("GET", "tagging")
    async def get_tagging(self, request):
        self.owned_bucket(request)
        tags = self.store.get_bucket_tags(self.name)
        if tags is None:
            raise NoSuchTagSet(BucketName=self.name)
        send_xml(request, tagging.tagging_document(tags))

    def receive_put_tagging(self, request, length):
        # Refused before the document is read when the caller is not the owner.
        self.owned_bucket(request)
        content_md5 = parse_content_md5(request.getHeaderText(b"Content-MD5"))
        return Received.of_document(BufferedBody(tagging.TAGGING_BODY_LIMIT, content_md5=content_md5))

    @operation("PUT", "tagging")
    async def put_tagging(self, request):
        self.owned_bucket(request)
        tags = tagging.parse_tag_set(request.received.document_bytes(), tagging.MAX_BUCKET_TAGS)
        await self.store.set_bucket_tags(self.name, tags)
        send_empty(request, 204)

    @operation("DELETE", "tagging")
    async def delete_tagging(self, request):
        self.owned_bucket(request)
        await self.store.set_bucket_tags(self.name, None)
        send_empty(request, 204)

    get_website = operation("GET", "website")(_not_configured(NoSuchWebsiteConfiguration))
    get_encryption = operation("GET", "encryption")(_not_configured(ServerSideEncryptionConfigurationNotFoundError))
    get_object_lock = operation("GET", "object-lock")(_not_configured(ObjectLockConfigurationNotFoundError))
    get_replication = operation("GET", "replication")(_not_configured(ReplicationConfigurationNotFoundError))
    del _not_configured
