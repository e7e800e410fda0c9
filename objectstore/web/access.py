"""Access decisions as the web layer needs them: allowed, or AccessDenied."""

from objectstore.auth import acl as acls
from objectstore.errors import AccessDenied, NoSuchBucket, ObjectDamaged


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


def require_expected_owner(request, store, bucket_name, header=b"x-amz-expected-bucket-owner"):
    """Refuse (AccessDenied, as AWS does) a request whose *header* names someone other than the bucket's owner.

    The owner is named by the canonical user id ListBuckets reports. A bucket
    that does not exist is left to the operation to answer.
    """
    expected = request.getHeader(header)
    if expected is None or bucket_name is None:
        return
    try:
        owner = store.get_bucket(bucket_name).owner
    except NoSuchBucket:
        return
    if expected.decode("latin-1").strip() != owner:
        raise AccessDenied()
