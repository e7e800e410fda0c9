"""The ACL a request asks for: ``x-amz-acl``, ``x-amz-grant-*`` headers, or an AccessControlPolicy document.

What comes out is the stored form (objectstore/auth/acl.py). Every grantee
is checked on the way in, with AWS's errors: an ACL is never stored naming
a user that does not exist or a group S3 does not have.
"""

import re

from objectstore import xmlio
from objectstore.auth import acl as acls
from objectstore.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    MalformedXML,
    MissingSecurityHeader,
    UnexpectedContent,
    UnresolvableGrantByEmailAddress,
)

CANNED_HEADER = "x-amz-acl"
# Each grant header and the permission it grants, in the order grants are stored.
GRANT_HEADERS = (
    ("x-amz-grant-read", acls.READ),
    ("x-amz-grant-write", acls.WRITE),
    ("x-amz-grant-read-acp", acls.READ_ACP),
    ("x-amz-grant-write-acp", acls.WRITE_ACP),
    ("x-amz-grant-full-control", acls.FULL_CONTROL),
)
# An AccessControlPolicy is a few hundred bytes per grant; AWS allows 100 grants.
ACL_BODY_LIMIT = 64 * 1024
MAX_GRANTS = 100

_XSI_TYPE = f"{{{xmlio.XSI_NS}}}type"
# One grantee of a grant header: ``kind=value`` or ``kind="value"``.
_GRANTEE = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^"\s]+))\s*')


def acl_headers(request):
    """The ACL headers a request carries, ``{lower-case name: text}``."""
    names = (CANNED_HEADER, *(name for name, _ in GRANT_HEADERS))
    found = {}
    for name in names:
        value = request.getHeaderText(name.encode())
        if value is not None:
            found[name] = value
    return found


def acl_from_headers(headers, owner, credentials, bucket_owner=None):
    """The ACL *headers* (see ``acl_headers``) ask for, for a resource *owner* owns; None if they ask nothing.

    Grant headers give exactly the grants they name, as in S3: the owner
    gets no FULL_CONTROL unless a header grants it (owners keep READ_ACP
    and WRITE_ACP whatever the ACL says).
    """
    grant_headers = [(name, permission) for name, permission in GRANT_HEADERS if name in headers]
    if CANNED_HEADER in headers:
        if grant_headers:
            raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
        return acls.canned(headers[CANNED_HEADER], owner, bucket_owner)
    if not grant_headers:
        return None
    grantees = Grantees(credentials)
    grants = []
    for name, permission in grant_headers:
        for kind, reference in parse_grant_header(name, headers[name]):
            grants.append(grantees.grant(kind, reference, permission, name))
    return {"owner": owner, "grants": _capped(grants)}


def parse_grant_header(name, value):
    """``[(kind, value)]`` of a grant header's ``kind="value", ...`` list; kinds lower-cased.

    Values never hold commas (ids, group URIs, e-mail addresses), so a comma
    always ends a grantee.
    """
    grantees = []
    for item in value.split(","):
        match = _GRANTEE.fullmatch(item)
        if match is None:
            raise InvalidArgument("Argument format not recognized", ArgumentName=name, ArgumentValue=value)
        kind, quoted, bare = match.groups()
        grantees.append((kind.lower(), quoted if quoted is not None else bare))
    return grantees


def acl_from_document(body, owner, credentials):
    """The ACL an AccessControlPolicy document sets on a resource *owner* owns.

    The document must name the current owner: S3 does not let an ACL give a
    resource away (AccessDenied), and a document without one is malformed.
    """
    try:
        root = xmlio.parse(body, ACL_BODY_LIMIT)
    except MalformedXML:
        raise MalformedACLError() from None
    if xmlio.local(root) != "AccessControlPolicy" or any(
        xmlio.local(child) not in ("Owner", "AccessControlList") for child in root
    ):
        raise MalformedACLError()
    owner_element = _only_child(root, "Owner")
    named_owner = _text(owner_element, "ID")
    if not named_owner:
        raise MalformedACLError()
    if named_owner != owner:
        raise AccessDenied()
    grantees = Grantees(credentials)
    grants = []
    for element in _only_child(root, "AccessControlList"):
        if xmlio.local(element) != "Grant":
            raise MalformedACLError()
        grants.append(_document_grant(element, grantees))
    return {"owner": owner, "grants": _capped(grants)}


def _document_grant(element, grantees):
    grantee = _only_child(element, "Grantee")
    permission = _text(element, "Permission")
    kind = grantee.get(_XSI_TYPE)
    if kind == "CanonicalUser":
        return grantees.user(_required_text(grantee, "ID"), permission, "CanonicalUser/ID")
    if kind == "Group":
        return grantees.group(_required_text(grantee, "URI"), permission, "Group/URI")
    if kind == "AmazonCustomerByEmail":
        _check_permission(permission)
        return grantees.email(_required_text(grantee, "EmailAddress"))
    raise MalformedACLError()


def requested_policy(request, owner, credentials, bucket_owner=None):
    """What PutBucketAcl / PutObjectAcl set: the ACL headers ask for, or else the body's document.

    Headers and a document together are refused, as S3 refuses them, and so
    is a request with neither.
    """
    body = request.received.document_bytes()
    from_headers = acl_from_headers(acl_headers(request), owner, credentials, bucket_owner)
    if from_headers is not None:
        if body.strip():
            raise UnexpectedContent()
        return from_headers
    if not body.strip():
        raise MissingSecurityHeader(MissingHeaderName=CANNED_HEADER)
    return acl_from_document(body, owner, credentials)


class Grantees:
    """Turns the grantees a request names into grants, refusing the unknown ones."""

    def __init__(self, credentials):
        self._credentials = credentials

    def grant(self, kind, reference, permission, argument_name):
        """A grant from a header's ``kind=reference``."""
        if kind == "id":
            return self.user(reference, permission, argument_name)
        if kind == "uri":
            return self.group(reference, permission, argument_name)
        if kind == "emailaddress":
            return self.email(reference)
        raise InvalidArgument("Argument format not recognized", ArgumentName=argument_name, ArgumentValue=reference)

    def user(self, user_id, permission, argument_name):
        _check_permission(permission)
        if user_id != acls.EXEC_READ_USER and not self._credentials.user_exists(user_id):
            raise InvalidArgument("Invalid id", ArgumentName=argument_name, ArgumentValue=user_id)
        return acls.user_grant(user_id, permission)

    def group(self, uri, permission, argument_name):
        _check_permission(permission)
        if uri not in acls.GROUPS:
            raise InvalidArgument("Invalid group uri", ArgumentName=argument_name, ArgumentValue=uri)
        return acls.group_grant(uri, permission)

    def email(self, address):
        # Users here have no e-mail address, so none resolves: AWS's answer for an unknown one.
        raise UnresolvableGrantByEmailAddress(EmailAddress=address)


def _check_permission(permission):
    if permission not in acls.PERMISSIONS:
        raise MalformedACLError()


def _capped(grants):
    if len(grants) > MAX_GRANTS:
        raise MalformedACLError(f"An access control list may hold at most {MAX_GRANTS} grants.")
    return grants


def _only_child(element, name):
    found = xmlio.children(element, name)
    if len(found) != 1:
        raise MalformedACLError()
    return found[0]


def _text(element, name):
    """The stripped text of *element*'s only child *name*; MalformedACLError if it has several or none."""
    return (_only_child(element, name).text or "").strip()


def _required_text(element, name):
    text = _text(element, name)
    if not text:
        raise MalformedACLError()
    return text
