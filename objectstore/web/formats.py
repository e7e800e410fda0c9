"""How dates, owners and ACLs look on the wire."""

import time
from email.utils import formatdate, parsedate_to_datetime

from twisted.web.http_headers import Headers

from objectstore import xmlio
from objectstore.auth import acl as acls


def iso8601(timestamp):
    """S3's XML timestamps: 2009-10-12T17:50:30.000Z."""
    seconds = int(timestamp)
    millis = int((timestamp - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def http_date(timestamp):
    """Headers' dates (Last-Modified): RFC 1123, whole seconds."""
    return formatdate(int(timestamp), usegmt=True)


def parse_http_date(text):
    """Seconds since the epoch, or None for anything unparsable (S3 ignores those)."""
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class MetadataHeaders(Headers):
    """Response headers that send ``x-amz-meta-*`` names lower-case, as S3 does.

    Twisted writes every header name in Canonical-Case, and boto3 keeps the
    case it reads: metadata stored as ``color`` would come back to it as
    ``Color``, a different key.
    """

    __slots__ = ()

    def getAllRawHeaders(self):
        for name, values in super().getAllRawHeaders():
            lower = name.lower()
            yield (lower if lower.startswith(b"x-amz-meta-") else name), values


def owner_element(parent, owner_id, credentials, tag="Owner"):
    owner = xmlio.sub(parent, tag)
    xmlio.sub(owner, "ID", owner_id)
    xmlio.sub(owner, "DisplayName", credentials.display_name(owner_id))
    return owner


def acl_document(acl, credentials):
    root = xmlio.element("AccessControlPolicy")
    owner_element(root, acl["owner"], credentials)
    grants = xmlio.sub(root, "AccessControlList")
    for grant in acl["grants"]:
        element = xmlio.sub(grants, "Grant")
        grantee = xmlio.sub(element, "Grantee")
        grantee.set(f"{{{xmlio.XSI_NS}}}type", grant["type"])
        if grant["type"] == "Group":
            xmlio.sub(grantee, "URI", grant["uri"])
        else:
            xmlio.sub(grantee, "ID", grant["id"])
            if grant["id"] != acls.EXEC_READ_USER:
                xmlio.sub(grantee, "DisplayName", credentials.display_name(grant["id"]))
        xmlio.sub(element, "Permission", grant["permission"])
    return root
