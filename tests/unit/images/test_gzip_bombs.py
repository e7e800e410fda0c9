"""Decompression bombs stop early, in little time and little memory (docs/bundle-format.md §6.6, §10)."""

import resource
import time
import tracemalloc

import pytest

from images.bundle import bundle_stream
from images.errors import ImageTooLarge
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


def refuse_within_limits(workspace, result, cloud, match, **unbundle_options):
    """Refused with ImageTooLarge in under two seconds, without memory growing with the bomb."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    try:
        assert_refused(workspace, result.manifest_path, cloud.key, ImageTooLarge, match, **unbundle_options)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2, f"took {elapsed:.1f} s"
    assert peak < 16 * 1024 * 1024, f"peak traced memory {peak} bytes"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 * 1024  # KiB on Linux


def test_the_bomb_builder_is_small_and_fast():
    started = time.monotonic()
    bomb = gzip_bomb(BOMB_SIZE)
    compressed = 0
    while chunk := bomb.read(1 << 20):
        compressed += len(chunk)
    assert compressed < BOMB_SIZE / 1000
    assert time.monotonic() - started < 1


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
