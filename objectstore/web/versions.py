"""Object versions as S3 names them, for buckets that have never had versioning.

Such a bucket holds one version of each key, whose id is ``null`` (AWS's
name for the version written while versioning is off). So ListObjectVersions
is the listing of the keys, each as its ``null`` version, latest; and
``versionId=null`` names the object itself, where any other id names
nothing. SDKs and test harnesses clean buckets up through exactly this
(list the versions, delete them by id), whether or not a bucket was ever
versioned.
"""

from objectstore import xmlio
from objectstore.errors import InvalidArgument
from objectstore.web.formats import iso8601, owner_element
from objectstore.web.listing import encoder_of, key_text, page_terms
from objectstore.web.resource import arg

NULL_VERSION = "null"


def invalid_version_id(name: str, value: str) -> InvalidArgument:
    return InvalidArgument("Invalid version id specified", ArgumentName=name, ArgumentValue=value)


def require_null_version(request, name: str = "versionId") -> None:
    """Refuse a request for a version other than ``null``, which is the only one there is."""
    value = arg(request, name)
    if value is not None and value != NULL_VERSION:
        raise invalid_version_id(name, value)


def versions_start(request):
    """``(key-marker, version-id-marker)``, and the key the page begins after."""
    key_marker = arg(request, "key-marker", "")
    version_marker = arg(request, "version-id-marker", "")
    if version_marker and not key_marker:
        raise InvalidArgument(
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    if version_marker and version_marker != NULL_VERSION:
        raise invalid_version_id("version-id-marker", version_marker)
    # After key K's null version comes the next key: the same as after K.
    return key_marker, version_marker, key_marker


def versions_document(request, bucket, listing, prefix, delimiter, key_marker, version_marker, max_keys, credentials):
    """The ListVersionsResult of a page of keys, each its ``null`` version."""
    enc = encoder_of(request)
    root = xmlio.element("ListVersionsResult")
    xmlio.sub(root, "Name", bucket)
    key_text(root, "Prefix", enc(prefix))
    key_text(root, "KeyMarker", enc(key_marker))
    xmlio.sub(root, "VersionIdMarker", version_marker)
    if listing.truncated:
        key_text(root, "NextKeyMarker", enc(listing.last))
        # Always named with the key marker: clients hand both back as they got them.
        xmlio.sub(root, "NextVersionIdMarker", NULL_VERSION)
    page_terms(root, request, listing, delimiter, max_keys, enc)
    for entry in listing.entries:
        version = xmlio.sub(root, "Version")
        key_text(version, "Key", enc(entry.key))
        xmlio.sub(version, "VersionId", NULL_VERSION)
        xmlio.sub(version, "IsLatest", "true")
        xmlio.sub(version, "LastModified", iso8601(entry.modified))
        xmlio.sub(version, "ETag", f'"{entry.etag}"')
        xmlio.sub(version, "Size", str(entry.size))
        owner_element(version, entry.owner, credentials)
        xmlio.sub(version, "StorageClass", "STANDARD")
    for common in listing.prefixes:
        key_text(xmlio.sub(root, "CommonPrefixes"), "Prefix", enc(common))
    return root
