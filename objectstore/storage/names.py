"""What a bucket name and an object key may be."""

import ipaddress
import re
from typing import Optional

from objectstore.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

MAX_KEY_BYTES = 1024

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_CHARACTERS = re.compile(r"[a-z0-9.-]+")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# The store's spool folder. Bucket names never become paths here, but a
# bucket named like an internal folder is the confusion behind MinIO's
# CVE-2023-28434 (docs/threat-model.md rows 12 and 13); refusing it keeps any
# future backend that maps buckets to folders out of that trap.
_RESERVED_NAMES = frozenset({"tmp"})


def check_bucket_name(name: str) -> str:
    """Apply S3's naming rules (the strict, DNS-compatible ones); InvalidBucketName says which one failed."""
    reason = bucket_name_problem(name)
    if reason is not None:
        raise InvalidBucketName(f"The specified bucket is not valid: {reason}.", BucketName=name)
    return name


def bucket_name_problem(name: str) -> Optional[str]:
    """Why *name* cannot be a bucket's name (the first rule it breaks), or None if it can."""
    if not 3 <= len(name) <= 63:
        return f"a bucket name is 3 to 63 characters long, and this one is {len(name)}"
    # fullmatch: a regex's $ would let a trailing newline through.
    if not _BUCKET_CHARACTERS.fullmatch(name):
        return "a bucket name may contain only lowercase letters, digits, dots (.) and hyphens (-)"
    if not _BUCKET_RE.fullmatch(name):
        return "a bucket name must begin and end with a lowercase letter or a digit"
    for pair in ("..", ".-", "-."):
        if pair in name:
            return f"a bucket name must not contain {pair!r}"
    if _is_ip_address(name):
        return "a bucket name must not be formatted as an IP address"
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"bucket names beginning with {prefix!r} are reserved"
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"bucket names ending with {suffix!r} are reserved"
    if name in _RESERVED_NAMES:
        return f"{name!r} is reserved for the server's own use"
    return None


def _is_ip_address(name):
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def check_key(key: str) -> str:
    """Keys are any UTF-8 up to 1024 bytes, but never a NUL: it cannot round-trip."""
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError(Size=len(key.encode("utf-8", "surrogatepass")), MaxSizeAllowed=MAX_KEY_BYTES)
    if "\x00" in key:
        raise InvalidArgument("Object key must not contain a NUL character.")
    return key


def decode_key(raw: bytes) -> str:
    """Turn the percent-decoded bytes of a key into text, refusing invalid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("Object key is not valid UTF-8.") from None
