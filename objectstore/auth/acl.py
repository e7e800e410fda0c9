"""Access control lists: who holds which permission on a bucket or object.

An ACL is plain data (stored as JSON): the owner's id and a list of grants,
each a grantee (a canonical user id or a group URI) and a permission.

What each permission allows is S3's: on a bucket, READ lists it and WRITE
creates, overwrites and deletes any object in it; on an object, READ reads
it (WRITE means nothing there); READ_ACP and WRITE_ACP read and replace the
ACL itself. A bucket's owner reads an object in it only if the object's ACL
says so (``bucket-owner-read`` / ``bucket-owner-full-control``).
"""

from typing import TYPE_CHECKING, Any, Optional

from objectstore.errors import InvalidArgument

if TYPE_CHECKING:
    from objectstore.auth.credentials import Caller

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
# A group AWS knows: grants to it are kept (so ACLs round-trip) but no caller belongs to it.
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
# The image registry reads bundles as this user: ``aws-exec-read`` grants it READ.
EXEC_READ_USER = "objectstore:image-registry"

READ = "READ"
WRITE = "WRITE"
READ_ACP = "READ_ACP"
WRITE_ACP = "WRITE_ACP"
FULL_CONTROL = "FULL_CONTROL"
PERMISSIONS = (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL)

CANNED = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)


def user_grant(user_id: str, permission: str) -> dict[str, str]:
    return {"type": "CanonicalUser", "id": user_id, "permission": permission}


def group_grant(uri: str, permission: str) -> dict[str, str]:
    return {"type": "Group", "uri": uri, "permission": permission}


def canned(name: str, owner: str, bucket_owner: Optional[str] = None) -> dict[str, Any]:
    """The ACL a canned name (``x-amz-acl``) stands for.

    *bucket_owner* is the owner of the bucket an object goes into (None for
    a bucket itself): the ``bucket-owner-*`` names grant it something only
    when it is not the object's owner, and mean ``private`` on a bucket.
    """
    grants = [user_grant(owner, FULL_CONTROL)]
    if name == "private":
        pass
    elif name == "public-read":
        grants.append(group_grant(ALL_USERS, READ))
    elif name == "public-read-write":
        grants += [group_grant(ALL_USERS, READ), group_grant(ALL_USERS, WRITE)]
    elif name == "authenticated-read":
        grants.append(group_grant(AUTHENTICATED_USERS, READ))
    elif name == "aws-exec-read":
        grants.append(user_grant(EXEC_READ_USER, READ))
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        if bucket_owner and bucket_owner != owner:
            permission = READ if name == "bucket-owner-read" else FULL_CONTROL
            grants.append(user_grant(bucket_owner, permission))
    else:
        raise InvalidArgument(f"Unknown canned ACL {name!r}.", ArgumentName="x-amz-acl", ArgumentValue=name)
    return {"owner": owner, "grants": grants}


def allows(acl: dict, caller: "Caller", permission: str) -> bool:
    """Does *acl* give *caller* (a Caller) *permission*?

    Admins may do anything; owners always keep READ_ACP and WRITE_ACP, as in
    S3, so an owner who revoked their own grants can still restore them.
    AllUsers is everyone, anonymous callers included; AuthenticatedUsers is
    anyone who signed with a valid key.
    """
    user = caller.user
    if user is not None:
        if user.admin:
            return True
        if user.id == acl["owner"] and permission in (READ_ACP, WRITE_ACP):
            return True
    for grant in acl["grants"]:
        if grant["permission"] not in (permission, FULL_CONTROL):
            continue
        if grant["type"] == "Group":
            if grant["uri"] == ALL_USERS or (grant["uri"] == AUTHENTICATED_USERS and user is not None):
                return True
        elif user is not None and grant["id"] == user.id:
            return True
    return False
