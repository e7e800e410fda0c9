"""What a bucket name and an object key may be."""

import ipaddress
import re

from objectstore.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

MAX_KEY_BYTES = 1024

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# The store's spool folder. Bucket names never become paths here, but a
# bucket named like an internal folder is the confusion behind MinIO's
# CVE-2023-28434 (RELIABILITY.md rows 12 and 13); refusing it keeps any
# future backend that maps buckets to folders out of that trap.
_RESERVED_NAMES = frozenset({"tmp"})


def check_bucket_name(name):
    """Apply S3's naming rules (the strict, DNS-compatible ones)."""
    if (
        # fullmatch: a regex's $ would let a trailing newline through.
        not _BUCKET_RE.fullmatch(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or name.startswith(_RESERVED_PREFIXES)
        or name.endswith(_RESERVED_SUFFIXES)
        or _is_ip_address(name)
        or name in _RESERVED_NAMES
    ):
        raise InvalidBucketName(BucketName=name)
    return name


def _is_ip_address(name):
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def check_key(key):
    """Keys are any UTF-8 up to 1024 bytes, but never a NUL: it cannot round-trip."""
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError(Size=len(key.encode("utf-8", "surrogatepass")), MaxSizeAllowed=MAX_KEY_BYTES)
    if "\x00" in key:
        raise InvalidArgument("Object key must not contain a NUL character.")
    return key


def decode_key(raw):
    """Turn the percent-decoded bytes of a key into text, refusing invalid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("Object key is not valid UTF-8.") from None
