"""Access decisions as the web layer needs them: allowed, or AccessDenied."""

from objectstore.auth import acl as acls
from objectstore.errors import AccessDenied, ObjectDamaged


def require(request, acl, permission):
    if not acls.allows(acl, request.caller, permission):
        raise AccessDenied()


def require_owner(request, owner_id):
    user = request.caller.user
    if user is None or not (user.admin or user.id == owner_id):
        raise AccessDenied()


def require_user(request):
    """Anything but anonymous."""
    if request.caller.user is None:
        raise AccessDenied()
    return request.caller.user


def open_readable(request, store, bucket, key):
    """``store.open_object``; a damaged object is refused as such only to a caller who may read it.

    The store refuses damaged objects before any caller's right is known;
    to anyone else the answer is the AccessDenied the object's ACL gives.
    """
    try:
        return store.open_object(bucket, key)
    except ObjectDamaged:
        require(request, store.get_object(bucket, key).acl, acls.READ)
        raise
