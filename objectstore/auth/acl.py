"""Access control lists: who holds which permission on a bucket or object.

An ACL is plain data (stored as JSON): the owner's id and a list of grants,
each a grantee (a canonical user id or a group URI) and a permission.
"""

from objectstore.errors import InvalidArgument

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
EXEC_READ_USER = "objectstore:image-registry"

READ = "READ"
WRITE = "WRITE"
READ_ACP = "READ_ACP"
WRITE_ACP = "WRITE_ACP"
FULL_CONTROL = "FULL_CONTROL"
PERMISSIONS = (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL)


def user_grant(user_id, permission):
    return {"type": "CanonicalUser", "id": user_id, "permission": permission}


def group_grant(uri, permission):
    return {"type": "Group", "uri": uri, "permission": permission}


def canned(name, owner, bucket_owner=None):
    """The ACL a canned name (``x-amz-acl``) stands for."""
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


def allows(acl, caller, permission):
    """Does *acl* give *caller* (a Caller) *permission*?

    Admins may do anything; owners always keep READ_ACP and WRITE_ACP, as in S3.
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
