"""Access decisions as the web layer needs them: allowed, or AccessDenied."""

from objectstore.auth import acl as acls
from objectstore.errors import AccessDenied


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
