"""The S3 calls the tool makes, path-style, against the S3 URL (which may carry a path prefix)."""

import base64
import hashlib
import json
from urllib.parse import quote

from objectstore import xmlio
from objectstore.bundletool.transport import MAX_ANSWER, ServiceError, ToolError
from objectstore.errors import S3Error

# DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000


class S3:
    def __init__(self, http, base_url):
        self.http = http
        self.base_url = base_url

    def url(self, bucket="", key="", query=""):
        path = "/" + bucket + ("/" + quote(key.encode("utf-8"), safe="/~") if key else "")
        return self.base_url + path + ("?" + query if query else "")

    async def _call(self, method, url, **kwargs):
        return await self.http.request(method, url, service="s3", **kwargs)

    async def ensure_bucket(self, bucket, location=None):
        """Create *bucket* unless it is there already and ours; True if it was created."""
        try:
            # A listing, not HEAD, as euca-upload-bundle does: its error has a code to tell
            # a bucket of someone else's from a refused signature.
            await self._call("GET", self.url(bucket, query="max-keys=0"))
            return False
        except ServiceError as e:
            if e.code == "AccessDenied":
                raise ToolError(f"bucket {bucket} exists but you may not use it (AccessDenied)") from None
            if e.code != "NoSuchBucket":
                raise
        body = b""
        if location:
            body = xmlio.to_bytes(
                xmlio.element("CreateBucketConfiguration", xmlio.element("LocationConstraint", location))
            )
        try:
            await self._call("PUT", self.url(bucket), body=body)
        except ServiceError as e:
            if e.code != "BucketAlreadyOwnedByYou":  # made meanwhile by another upload of ours
                raise
            return False
        return True

    async def head(self, bucket, key):
        """(ETag without quotes, size) of an object, or None if there is none."""
        try:
            reply = await self._call("HEAD", self.url(bucket, key))
        except ServiceError as e:
            if e.status == 404:
                return None
            raise
        return (reply.header(b"ETag") or b"").decode("latin-1").strip('"'), int(reply.header(b"Content-Length") or 0)

    async def put_file(self, bucket, key, body, md5, *, acl=None, on_sent=None):
        """Upload a FileBody with its MD5 (bytes) as Content-MD5; the ETag is checked against it."""
        headers = {"content-md5": base64.b64encode(md5).decode("ascii")}
        if acl:
            headers["x-amz-acl"] = acl
        reply = await self._call("PUT", self.url(bucket, key), headers=headers, body=body, on_sent=on_sent)
        etag = (reply.header(b"ETag") or b"").decode("latin-1").strip('"')
        if etag != md5.hex():
            raise ToolError(f"the server stored {bucket}/{key} with ETag {etag!r}, not the MD5 {md5.hex()} sent")
        return etag

    async def put_acl(self, bucket, key, acl):
        """Set a canned ACL on an object (an upload that skipped its bytes still sets its ACL)."""
        await self._call("PUT", self.url(bucket, key, query="acl="), headers={"x-amz-acl": acl})

    async def get(self, bucket, key):
        """An object's bytes, or None if there is none."""
        try:
            return (await self._call("GET", self.url(bucket, key))).body
        except ServiceError as e:
            if e.status == 404 and e.code == "NoSuchKey":
                return None
            raise

    async def delete_keys(self, bucket, keys):
        """Delete *keys* (missing ones are no error), a thousand per request."""
        keys = list(keys)
        for start in range(0, len(keys), DELETE_BATCH):
            objects = [xmlio.element("Object", xmlio.element("Key", key)) for key in keys[start : start + DELETE_BATCH]]
            body = xmlio.to_bytes(xmlio.element("Delete", xmlio.element("Quiet", "true"), *objects))
            headers = {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode("ascii")}
            reply = await self._call("POST", self.url(bucket, query="delete="), headers=headers, body=body)
            result = _xml(reply.body)
            failed = result.find("{*}Error")
            if failed is not None:
                raise ToolError(
                    f"cannot delete {bucket}/{failed.findtext('{*}Key')}: "
                    f"{failed.findtext('{*}Message')} ({failed.findtext('{*}Code')})"
                )

    async def delete_bucket(self, bucket):
        try:
            await self._call("DELETE", self.url(bucket), ok=(204,))
        except ServiceError as e:
            if e.code != "NoSuchBucket":  # a retry after a lost answer finds it gone
                raise

    async def owner_id(self):
        """The caller's canonical user id, as ListBuckets names the owner."""
        owner = _xml((await self._call("GET", self.url())).body).findtext("{*}Owner/{*}ID")
        if not owner:
            raise ToolError("the server's bucket listing names no owner: give --user")
        return owner

    async def cloud_certificate(self):
        """The PEM certificate the registry decrypts bundles with."""
        return (await self._call("GET", self.base_url + "/_images/cloud-cert.pem")).body

    async def image_progress(self, image_id):
        """How far the registry has got with an image (0-100), or None if it does not say."""
        try:
            listing = json.loads((await self._call("GET", self.base_url + "/_images/")).body)
        except ValueError:
            raise ToolError("the image listing is not JSON") from None
        for image in listing if isinstance(listing, list) else ():
            if isinstance(image, dict) and image.get("imageId") == image_id:
                return image.get("progress")
        return None


def _xml(body):
    try:
        return xmlio.parse(body, MAX_ANSWER)
    except S3Error:
        raise ToolError("the server's answer is not well-formed XML") from None
