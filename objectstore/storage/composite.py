"""The checksums of an object completed from parts, made from the parts' own.

Completing an upload reads none of its bytes, so the object's checksum must
come from what each part's was:

- COMPOSITE (any algorithm): the algorithm applied to the parts' binary
  checksums, concatenated, then ``-N`` for N parts; AWS's scheme, whose
  ETag (MD5 of MD5s) is the same idea.
- FULL_OBJECT (the CRCs only): the CRC of the whole object, which a CRC
  allows to be combined from the parts' CRCs and lengths. This is zlib's
  ``crc32_combine`` written for any reflected CRC whose initial value and
  final xor are all ones, as CRC32, CRC32C and CRC64NVME's are: appending
  ``n`` bytes B to A gives ``crc(AB) = crc(A) * x^(8n) mod P  xor  crc(B)``.
"""

import base64
import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

from objectstore.checksums import b64digest, new_checksum

COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"

# Each CRC's polynomial, bit-reflected, and its width in bits.
CRC_POLYNOMIALS = {
    "CRC32": (0xEDB88320, 32),
    "CRC32C": (0x82F63B78, 32),
    "CRC64NVME": (0x9A6C9329AC4BC9B5, 64),
}


def composite_etag(part_md5s: Sequence[str]) -> str:
    """``<md5 of the parts' binary MD5s>-N`` from the parts' hex MD5s."""
    md5 = hashlib.md5()
    for hex_md5 in part_md5s:
        md5.update(bytes.fromhex(hex_md5))
    return f"{md5.hexdigest()}-{len(part_md5s)}"


def composite_checksum(algorithm: str, part_values: Sequence[str]) -> str:
    """The COMPOSITE checksum from the parts' base64 values of *algorithm*."""
    running = new_checksum(algorithm)
    for value in part_values:
        running.update(base64.b64decode(value))
    return f"{b64digest(running)}-{len(part_values)}"


def full_object_crc(algorithm: str, parts: Iterable[tuple[str, int]]) -> str:
    """The CRC of the concatenated parts; *parts*: ``(base64 CRC, length)`` in order."""
    polynomial, width = CRC_POLYNOMIALS[algorithm]
    crc = 0  # the CRC of no bytes at all, for these CRCs
    for value, length in parts:
        shift = _zeros_multiplier(length, polynomial, width)
        crc = _multiply(shift, crc, polynomial, width) ^ int.from_bytes(base64.b64decode(value), "big")
    return base64.b64encode(crc.to_bytes(width // 8, "big")).decode("ascii")


def _multiply(a, b, polynomial, width):
    """a * b modulo the polynomial, both reflected (x^0 is the top bit)."""
    product = 0
    bit = 1 << (width - 1)
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        # b times x: a shift down, reduced by the polynomial when x^(width-1) falls off.
        b = (b >> 1) ^ polynomial if b & 1 else b >> 1
    return product


@lru_cache(maxsize=256)
def _zeros_multiplier(length, polynomial, width):
    """x^(8 * length) modulo the polynomial: what appending *length* bytes does to a CRC.

    Cached: the parts of an upload mostly share one size, so a 10,000-part
    completion computes it about twice.
    """
    result = 1 << (width - 1)  # x^0
    power = 1 << (width - 2)  # x^1, squared to x^2, x^4, ... below
    n = 8 * length
    while n:
        if n & 1:
            result = _multiply(power, result, polynomial, width)
        n >>= 1
        if n:
            power = _multiply(power, power, polynomial, width)
    return result
