"""Conditional requests and byte ranges, decided as S3 decides them."""

import time

from objectstore.errors import InvalidRange, PreconditionFailed
from objectstore.web.formats import parse_http_date


class NotModified(Exception):
    """Answer 304: the client's copy is current."""


def etag_matches(header, etag):
    """Does an If-Match / If-None-Match list name *etag* (or ``*``)?"""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == "*" or candidate.strip('"') == etag:
            return True
    return False


def check_conditions(headers, info, prefix="", clock=time.time):
    """Apply If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.

    S3's precedence (RFC 7232's): a satisfied If-Match overrides a failed
    If-Unmodified-Since, and a failed If-None-Match overrides If-Modified-Since.
    *headers* maps lower-case names to text; *prefix* is
    ``x-amz-copy-source-`` for a copy's source, where every failure is a 412.
    A GET's If-Modified-Since later than *clock* is not a valid date (RFC
    9110 §13.1.3) and is ignored, as S3 ignores it.
    """
    modified = int(info.modified)
    if_match = headers.get(prefix + "if-match")
    if if_match is not None:
        if not etag_matches(if_match, info.etag):
            raise PreconditionFailed(Condition=_condition(prefix, "If-Match"))
    else:
        since = parse_http_date(headers.get(prefix + "if-unmodified-since"))
        if since is not None and modified > since:
            raise PreconditionFailed(Condition=_condition(prefix, "If-Unmodified-Since"))
    if_none_match = headers.get(prefix + "if-none-match")
    if if_none_match is not None:
        if etag_matches(if_none_match, info.etag):
            if prefix:
                raise PreconditionFailed(Condition=_condition(prefix, "If-None-Match"))
            raise NotModified()
    else:
        since = parse_http_date(headers.get(prefix + "if-modified-since"))
        if since is not None and not prefix and since > clock():
            since = None
        if since is not None and modified <= since:
            if prefix:
                raise PreconditionFailed(Condition=_condition(prefix, "If-Modified-Since"))
            raise NotModified()


def _condition(prefix, name):
    return prefix + name.lower() if prefix else name


def parse_range(header, size):
    """The (first, last) bytes a Range header asks for; None means the whole object.

    Syntax S3 does not serve (several ranges, other units, garbage, a last
    byte before the first) is ignored, as RFC 7233 allows and AWS does; a
    well-formed range that starts past the object is InvalidRange (416).
    """
    spec = _single_byte_range(header)
    if spec is None:
        return None
    first, last = spec
    if first is None:
        return _suffix_range(last, size, header)
    if last is not None and last < first:
        return None
    if first >= size:
        raise _invalid_range(header, size)
    return first, size - 1 if last is None else min(last, size - 1)


def _single_byte_range(header):
    """(first or None, last or None) of ``bytes=first-last``; None if it is not one such range."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if not dash or not (first or last):
        return None
    if not all(part.isdigit() and part.isascii() for part in (first, last) if part):
        return None
    return (int(first) if first else None), (int(last) if last else None)


def _suffix_range(length, size, header):
    """The last *length* bytes (``bytes=-N``); nothing to serve of an empty object or for N = 0."""
    if length == 0 or size == 0:
        raise _invalid_range(header, size)
    return max(0, size - length), size - 1


def _invalid_range(header, size):
    error = InvalidRange(RangeRequested=header, ActualObjectSize=size)
    # RFC 7233: a 416 says how big the representation is.
    error.headers = {"Content-Range": f"bytes */{size}"}
    return error
