"""A do-nothing S3 stand-in for calibrating the load generator.

It keeps only object sizes and MD5s (bodies are discarded, GETs send zeros)
and skips authentication, so whatever rate the harness reaches against it
is the ceiling the load generator itself imposes on this machine:
``python -m bench.run --servers null``.  Not an S3 implementation.

Standalone (stdlib only) so it runs as ``python nullserver.py PORT``.
"""

import asyncio
import bisect
import hashlib
import sys
from urllib.parse import parse_qsl, unquote, urlsplit

_ZEROS = bytes(1 << 20)
_objects = {}  # (bucket, key) -> (size, md5 hex)
_ordered = {}  # bucket -> sorted keys, for listing


async def _serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            size = int(headers.get("content-length", 0))
            md5 = hashlib.md5()
            left = size
            while left:
                chunk = await reader.read(min(left, 1 << 20))
                if not chunk:
                    return
                md5.update(chunk)
                left -= len(chunk)
            await _respond(writer, method, target, size, md5.hexdigest())
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _respond(writer, method, target, size, md5):
    url = urlsplit(target)
    bucket, _, key = unquote(url.path).lstrip("/").partition("/")
    if method == "PUT" and key:
        if (bucket, key) not in _objects:
            bisect.insort(_ordered.setdefault(bucket, []), key)
        _objects[bucket, key] = (size, md5)
        await _send(writer, 200, {"ETag": f'"{md5}"'})
    elif method in ("GET", "HEAD") and key:
        if (bucket, key) not in _objects:
            await _send(writer, 404)
            return
        length, etag = _objects[bucket, key]
        await _send(writer, 200, {"ETag": f'"{etag}"'}, length, zeros=method == "GET")
    elif method == "GET" and bucket:
        await _send(writer, 200, body=_list(bucket, dict(parse_qsl(url.query))))
    elif method == "DELETE" and key:
        if _objects.pop((bucket, key), None):
            _ordered[bucket].remove(key)
        await _send(writer, 204)
    else:
        _ordered.setdefault(bucket, [])
        await _send(writer, 200, body=b"<ListAllMyBucketsResult/>")


def _list(bucket, query):
    keys = _ordered.get(bucket, [])
    start = bisect.bisect_right(keys, query.get("continuation-token", ""))
    page = keys[start : start + int(query.get("max-keys", 1000))]
    truncated = start + len(page) < len(keys)
    xml = ["<ListBucketResult>"]
    xml += [f"<Contents><Key>{k}</Key></Contents>" for k in page]
    xml.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    if truncated:
        xml.append(f"<NextContinuationToken>{page[-1]}</NextContinuationToken>")
    xml.append("</ListBucketResult>")
    return "".join(xml).encode()


async def _send(writer, status, headers=None, length=None, zeros=False, body=b""):
    if length is None:
        length = len(body)
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    while zeros and length > 0:
        chunk = _ZEROS[: min(length, len(_ZEROS))]
        writer.write(chunk)
        length -= len(chunk)
        await writer.drain()
    await writer.drain()


async def main(port):
    server = await asyncio.start_server(_serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
