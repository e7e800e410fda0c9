"""The signature chain of a signed aws-chunked body, checked chunk by chunk as it streams.

Each chunk carries ``chunk-signature=S``: the HMAC of the previous signature
(the request's own signature for the first chunk) and the chunk's SHA-256.
A chunk that does not match refuses the body before anything is published;
the final empty chunk and, with ``...-PAYLOAD-TRAILER``, the trailer
(``x-amz-trailer-signature``) close the chain.
"""

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Optional

from objectstore.auth import sigv4
from objectstore.auth.errors import SignatureDoesNotMatch

TRAILER_SIGNATURE = "x-amz-trailer-signature"


class ChunkSignatures:
    """An aws-chunked observer (see web/awschunked.py) that checks every chunk's signature."""

    def __init__(
        self, key: bytes, timestamp: str, scope: str, seed_signature: str, signed_trailer: bool = False
    ) -> None:
        self._key = key
        self._timestamp = timestamp
        self._scope = scope
        self._previous = seed_signature
        self._signed_trailer = signed_trailer
        self._provided: Optional[str] = None
        self._hash: Any = None  # the running SHA-256 of the current chunk

    def chunk_started(self, size: int, extensions: str) -> None:
        self._provided = _extension(extensions, "chunk-signature")
        if self._provided is None:
            raise SignatureDoesNotMatch("An aws-chunked chunk has no chunk-signature.")
        self._hash = hashlib.sha256()

    def chunk_data(self, data: bytes) -> None:
        self._hash.update(data)

    def chunk_ended(self) -> None:
        to_sign = sigv4.chunk_string_to_sign(self._timestamp, self._scope, self._previous, self._hash.hexdigest())
        self._previous = self._check(to_sign, self._provided)

    def trailers_received(self, trailers: Mapping[str, str]) -> None:

        if not self._signed_trailer:
            return
        provided = trailers.get(TRAILER_SIGNATURE)
        if provided is None:
            raise SignatureDoesNotMatch("The aws-chunked trailer has no x-amz-trailer-signature.")
        signed = [(name, value) for name, value in trailers.items() if name != TRAILER_SIGNATURE]
        self._check(sigv4.trailer_string_to_sign(self._timestamp, self._scope, self._previous, signed), provided)

    def _check(self, to_sign, provided):
        expected = sigv4.signature(self._key, to_sign)
        if not hmac.compare_digest(expected.encode(), provided.encode("latin-1")):
            raise SignatureDoesNotMatch(StringToSign=to_sign, SignatureProvided=provided)
        return expected


def _extension(extensions, name):
    for part in extensions.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key.strip() == name:
            return value.strip()
    return None
