"""The free-space reserve (objectstore/storage/space.py): what a claim is refused, and what it counts."""

import os
import types

import pytest

from objectstore.errors import StorageFull
from objectstore.storage.blobs import BlobFiles
from objectstore.storage.space import DEFAULT_RESERVE, NO_CLAIM, NO_RESERVE, Reserve, Space, human
from objectstore.storage.writer import ObjectWriter, copy_body

MiB = 1024**2


class Disk:
    """A filesystem for Space's statvfs: *free* and *total* bytes, in 4 KiB blocks, and a clock."""

    def __init__(self, free, total=1024 * MiB):
        self.free, self.total, self.now, self.calls = free, total, 0.0, 0

    def statvfs(self, path):
        self.calls += 1
        return types.SimpleNamespace(f_bavail=self.free // 4096, f_blocks=self.total // 4096, f_frsize=4096)

    def clock(self):
        return self.now

    def space(self, reserve):
        return Space("/data", reserve, statvfs=self.statvfs, clock=self.clock)


def test_a_write_that_fits_above_the_reserve_is_claimed():
    space = Disk(free=100 * MiB).space(Reserve(10 * MiB))
    claim = space.claim(90 * MiB)
    assert claim.size == 90 * MiB
    assert space.free() == 10 * MiB


def test_a_write_that_would_cross_the_reserve_is_refused_with_what_is_free_and_kept():
    space = Disk(free=100 * MiB).space(Reserve(10 * MiB))
    with pytest.raises(StorageFull) as refused:
        space.claim(90 * MiB + 1)
    assert (refused.value.code, refused.value.status) == ("XObjectstoreStorageFull", 507)
    message = refused.value.message
    assert "100 MiB free" in message and "10 MiB is kept free" in message and "--min-free-space 10M" in message
    assert "this write needs 90 MiB" in message
    assert space.free() == 100 * MiB, "a refused claim holds nothing"


def test_below_the_reserve_even_a_write_of_rows_only_is_refused():
    space = Disk(free=5 * MiB).space(Reserve(10 * MiB))
    with pytest.raises(StorageFull):
        space.claim()


def test_claims_add_up_until_their_bytes_reach_the_disk():
    disk = Disk(free=100 * MiB)
    space = disk.space(Reserve(10 * MiB))
    first = space.claim(60 * MiB)
    with pytest.raises(StorageFull):
        space.claim(60 * MiB)
    first.dropped()
    space.claim(60 * MiB)


def test_bytes_written_since_the_sample_count_until_the_next_sample_sees_them():
    disk = Disk(free=100 * MiB)
    space = disk.space(Reserve(10 * MiB))
    claim = space.claim(50 * MiB)
    claim.stored(50 * MiB)
    disk.free -= 50 * MiB  # what the filesystem now says, once sampled again
    claim.kept()
    assert space.free() == 50 * MiB
    disk.now += 1
    assert space.free() == 50 * MiB


def test_inline_bytes_stay_promised_until_kept_then_count_until_the_next_sample():
    disk = Disk(free=100 * MiB)
    space = disk.space(Reserve(10 * MiB))
    claim = space.claim(MiB)
    disk.now += 1
    assert space.free() == 99 * MiB, "promised across samples: not written yet"
    claim.kept()
    assert space.free() == 99 * MiB, "committed: counted until a sample sees it"
    disk.now += 1
    assert space.free() == 100 * MiB, "this fake disk never received them"


def test_a_dropped_claim_gives_its_room_back_at_once():
    space = Disk(free=100 * MiB).space(Reserve(10 * MiB))
    claim = space.claim(80 * MiB)
    claim.stored(30 * MiB)
    claim.dropped()
    assert space.free() == 70 * MiB, "the bytes written still count until the next sample"


def test_a_claim_extends_only_while_the_reserve_allows():
    space = Disk(free=20 * MiB).space(Reserve(10 * MiB))
    claim = space.claim(0)
    claim.extend(10 * MiB)
    with pytest.raises(StorageFull):
        claim.extend(10 * MiB + 1)
    assert claim.size == 10 * MiB


def test_the_filesystem_is_sampled_once_per_interval():
    disk = Disk(free=100 * MiB)
    space = disk.space(Reserve(MiB))
    for _ in range(100):
        space.claim(0)
    assert disk.calls == 1
    disk.now += 0.1
    space.claim(0)
    assert disk.calls == 2


def test_a_percentage_reserve_is_of_the_filesystem_and_the_larger_of_two_counts():
    disk = Disk(free=70 * MiB, total=1000 * MiB)
    with pytest.raises(StorageFull):
        disk.space(Reserve(percent=5)).claim(20 * MiB + 1)
    disk.space(Reserve(percent=5)).claim(20 * MiB)
    with pytest.raises(StorageFull):
        disk.space(Reserve(20 * MiB, 1)).claim(50 * MiB + 1)
    disk.space(Reserve(20 * MiB, 1)).claim(50 * MiB)
    assert DEFAULT_RESERVE.bytes_of(1000 * MiB) == 256 * MiB
    assert DEFAULT_RESERVE.bytes_of(100_000 * MiB) == 1000 * MiB


def test_no_reserve_never_looks_at_the_disk_and_refuses_nothing():
    disk = Disk(free=0)
    claim = disk.space(NO_RESERVE).claim(10**15)
    claim.extend(10**16)
    assert claim is NO_CLAIM and disk.calls == 0


def test_a_forgotten_claim_gives_its_room_back_when_collected():
    space = Disk(free=100 * MiB).space(Reserve(10 * MiB))
    space.claim(80 * MiB)  # dropped on the floor
    assert space.free() == 100 * MiB


def test_a_writer_of_undeclared_length_stops_at_the_reserve_and_leaves_no_blob(tmp_path):
    files = BlobFiles(str(tmp_path), durable=False, spares=0).create_folders()
    space = Disk(free=11 * MiB).space(Reserve(10 * MiB))
    writer = ObjectWriter(files, inline_limit=64 * 1024, claim=space.claim())
    writer.write(b"x" * (MiB - 1))
    with pytest.raises(StorageFull):
        writer.write(b"xx")
    writer.abort()
    assert os.listdir(tmp_path / "tmp") == []
    assert space.free() == 10 * MiB + 1, "the bytes written count until the next sample"


def test_a_declared_writer_counts_its_blob_bytes_as_written(tmp_path):
    files = BlobFiles(str(tmp_path), durable=False, spares=0).create_folders()
    disk = Disk(free=100 * MiB)
    space = disk.space(Reserve(10 * MiB))
    writer = ObjectWriter(files, inline_limit=64 * 1024, claim=space.claim(2 * MiB))
    writer.write(b"x" * MiB)
    disk.now += 1
    disk.free -= MiB
    assert space.free() == 98 * MiB, "a MiB on the disk, a MiB still promised"
    writer.write(b"x" * MiB)
    writer.published()
    assert space.free() == 98 * MiB
    writer.abort()


def test_a_copy_is_written_within_its_claim(tmp_path):
    files = BlobFiles(str(tmp_path), durable=False, spares=0).create_folders()
    space = Disk(free=100 * MiB).space(Reserve(10 * MiB))
    source = types.SimpleNamespace(read=lambda offset, length: b"y" * length)
    writer = copy_body(files, source, 3 * MiB, claim=space.claim(3 * MiB))
    writer.published()
    assert writer.size == 3 * MiB and space.free() == 97 * MiB
    writer.abort()


@pytest.mark.parametrize(
    "size, text", [(512, "512 bytes"), (4 * MiB, "4 MiB"), (1536 * 1024, "1.5 MiB"), (3 * 1024**3, "3 GiB")]
)
def test_sizes_in_messages_are_binary_units(size, text):
    assert human(size) == text


def test_a_reserve_prints_as_the_option_takes_it():
    assert str(DEFAULT_RESERVE) == "256M, 1%"
    assert str(Reserve(1536 * 1024)) == "1536K" and str(Reserve(percent=0.5)) == "0.5%" and str(NO_RESERVE) == "0"
