"""Listing keys as an index range scan, rolling keys up into common prefixes.

Whole runs of keys under one common prefix are skipped with a single seek
past the prefix, so a listing costs one query per page plus one per prefix,
however many keys hide below the prefixes.
"""

import sqlite3
from typing import Optional

from objectstore.storage.records import ListEntry, Listing


def prefix_end(prefix: str) -> Optional[str]:
    """The smallest string greater than every string starting with *prefix*.

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so
    bumping the last code point is enough. None: no upper bound.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None


def list_keys(
    conn: sqlite3.Connection,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    after: str = "",
    max_keys: int = 1000,
) -> Listing:
    """Keys (and common prefixes) of *bucket* greater than *after*, in order."""
    entries: list = []
    prefixes: list = []
    last = None
    if max_keys <= 0:
        return Listing(entries, prefixes, truncated=False)
    upper = prefix_end(prefix) if prefix else None
    # The scan position: (key, inclusive?)
    low, inclusive = (after, False) if after >= prefix else (prefix, True)
    while True:
        # The cursor steps lazily: breaking out after a jump reads no more rows.
        jumped = False
        for key, size, etag, modified, owner in _scan(conn, bucket, low, inclusive, upper):
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    if common > after:
                        if len(entries) + len(prefixes) == max_keys:
                            return Listing(entries, prefixes, truncated=True, last=last)
                        prefixes.append(common)
                        last = common
                    end = prefix_end(common)
                    if end is None:
                        return Listing(entries, prefixes, truncated=False, last=last)
                    low, inclusive, jumped = end, True, True
                    break
            if len(entries) + len(prefixes) == max_keys:
                return Listing(entries, prefixes, truncated=True, last=last)
            entries.append(ListEntry(key, size, etag, modified, owner))
            last = key
        if not jumped:
            return Listing(entries, prefixes, truncated=False, last=last)


def _scan(conn, bucket, low, inclusive, upper):
    sql = (
        "SELECT key, size, etag, modified, owner FROM objects WHERE bucket = ? AND key "
        + (">=" if inclusive else ">")
        + " ?"
    )
    args = [bucket, low]
    if upper is not None:
        sql += " AND key < ?"
        args.append(upper)
    sql += " ORDER BY key"
    return conn.execute(sql, args)
