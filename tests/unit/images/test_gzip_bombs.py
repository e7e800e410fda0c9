"""Decompression bombs stop early, having inflated little, in little memory (docs/bundle-format.md §6.6, §10).

"Early" is counted in bytes, not seconds: what gunzip hands on before the
refusal, and what the bomb builder feeds to zlib. Both hold on a loaded machine.
"""

import resource
import tracemalloc
import zlib

import pytest

from images import testing, unbundle
from images.bundle import bundle_stream
from images.errors import ImageTooLarge
from images.safetar import stream_cap
from images.streams import gunzip
from images.testing import gzip_bomb, tar_header
from tests.unit.images.helpers import assert_refused

BOMB_SIZE = 4 * 1024**3  # 4 GiB expanded, about 4 MiB of gzip
IMAGE = b"i" * 1024


def bundle_bomb(workspace, options, prefix, declared_size):
    bomb = gzip_bomb(BOMB_SIZE, prefix=prefix)
    return bundle_stream(
        bomb,
        workspace.bundle,
        prefix="image.img",
        size=declared_size,
        gzipped=True,
        image_digest="0" * 40,  # never reached: the bomb is stopped first
        part_size=1024 * 1024,
        **options,
    )


def counting_gunzip(counter):
    """images.streams.gunzip, adding the bytes it inflates to ``counter["inflated"]``."""

    def counted(chunks, max_chunk):
        for chunk in gunzip(chunks, max_chunk):
            counter["inflated"] += len(chunk)
            yield chunk

    return counted


def refuse_within_limits(workspace, result, cloud, match, **unbundle_options):
    """Refused with ImageTooLarge once the tar stream outgrows its cap (one chunk past it at most),
    without memory growing with the bomb."""
    counter = {"inflated": 0}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(unbundle, "gunzip", counting_gunzip(counter))
            assert_refused(workspace, result.manifest_path, cloud.key, ImageTooLarge, match, **unbundle_options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    chunk_size = unbundle_options.get("chunk_size", unbundle.DEFAULT_CHUNK_SIZE)
    most = stream_cap(result.manifest.size) + chunk_size
    assert counter["inflated"] <= most, f"inflated {counter['inflated']} bytes of the bomb's {BOMB_SIZE}"
    assert peak < 16 * 1024 * 1024, f"peak traced memory {peak} bytes"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 * 1024  # KiB on Linux


class CountingZlib:
    """The zlib module, counting the bytes its deflaters and crc32 are given."""

    def __init__(self):
        self.fed = 0

    def __getattr__(self, name):
        return getattr(zlib, name)

    def compressobj(self, *args):
        deflater = zlib.compressobj(*args)
        counting = self

        class Deflater:
            def compress(self, data):
                counting.fed += len(data)
                return deflater.compress(data)

            def flush(self, *mode):
                return deflater.flush(*mode)

        return Deflater()

    def crc32(self, data, *value):
        self.fed += len(data)
        return zlib.crc32(data, *value)


def test_the_bomb_builder_is_small_and_fast(monkeypatch):
    """Fast as in little work: one block of zeros is deflated, however large the bomb."""
    counting = CountingZlib()
    monkeypatch.setattr(testing, "zlib", counting)
    bomb = gzip_bomb(BOMB_SIZE)
    compressed = 0
    while chunk := bomb.read(1 << 20):
        compressed += len(chunk)
    assert compressed < BOMB_SIZE / 1000
    assert counting.fed <= 1024 * 1024, f"{counting.fed} bytes deflated or summed for a {BOMB_SIZE}-byte bomb"


def test_zeros_after_a_small_member_stop_at_the_stream_cap(workspace, options, cloud):
    """A tar stream honest about its member, then gigabytes of "record fill"."""
    member = tar_header("image.img", len(IMAGE)) + IMAGE
    result = bundle_bomb(workspace, options, member, declared_size=len(IMAGE))
    refuse_within_limits(workspace, result, cloud, "expands to more than")


def test_a_member_claiming_gigabytes_stops_at_its_header(workspace, options, cloud):
    declared = 4 * 1024 * 1024  # a cap larger than one chunk, so the header is what trips
    result = bundle_bomb(workspace, options, tar_header("image.img", BOMB_SIZE - 512), declared_size=declared)
    refuse_within_limits(workspace, result, cloud, "member claims 4294966784 bytes")


def test_a_manifest_declaring_the_bombs_size_is_refused_by_the_server_limit(workspace, options, cloud):
    result = bundle_bomb(
        workspace, options, tar_header("image.img", BOMB_SIZE - 10240), declared_size=BOMB_SIZE - 10240
    )
    refuse_within_limits(workspace, result, cloud, "at most", max_size=1024**3)


@pytest.mark.parametrize("chunk_size", [4096, 1024 * 1024])
def test_no_chunk_size_lets_the_bomb_through(workspace, options, cloud, chunk_size):
    member = tar_header("image.img", len(IMAGE)) + IMAGE
    result = bundle_bomb(workspace, options, member, declared_size=len(IMAGE))
    refuse_within_limits(workspace, result, cloud, "expands to more than", chunk_size=chunk_size)
