"""Hostile bundles are refused with a clear reason and leave nothing behind (docs/threat-model.md threats 14-15)."""

import hashlib
import os
import tarfile

import pytest

from images.bundle import bundle_image
from images.errors import DecryptError, DigestMismatch, ImageTooLarge, ManifestError, MissingPart, UnsafeArchive
from images.manifest import Part, parse_manifest
from images.safetar import HEADER_BUDGET, METADATA_LIMIT
from images.testing import (
    block_device,
    bundle_tar,
    char_device,
    directory,
    end_of_archive,
    fifo,
    gnu_sparse_tar,
    hardlink,
    rebuild_manifest,
    regular,
    symlink,
    tar_header,
    tar_with_members,
)
from tests.unit.images.helpers import assert_refused


@pytest.fixture
def refuse(workspace, options, cloud):
    """Bundle ``tar`` (declaring ``size``), then check unbundling it fails as expected and leaves nothing."""

    def check(tar, error, match, size=4, **unbundle_options):
        result = bundle_tar(tar, workspace.bundle, size=size, part_size=65536, **options)
        return assert_refused(workspace, result.manifest_path, cloud.key, error, match, **unbundle_options)

    return check


# ---------------------------------------------------------------- unsafe members (row 14)


@pytest.mark.parametrize(
    "name", ["../x", "a/../../x", "../../../../etc/cron.d/evil", "..", "a\\..\\..\\x"], ids=lambda n: n
)
def test_a_member_climbing_out_of_its_folder_is_refused(refuse, name):
    refuse(tar_with_members([(name, b"data")]), UnsafeArchive, r"has a '\.\.' in its name")


@pytest.mark.parametrize("name", ["/etc/x", "/x", "\\x"])
def test_a_member_with_an_absolute_name_is_refused(refuse, name):
    refuse(tar_with_members([(name, b"data")]), UnsafeArchive, "has an absolute name")


def test_a_symlink_then_a_file_through_it_is_refused_at_the_symlink(refuse):
    tar = tar_with_members([symlink("l", "/"), ("l/etc/x", b"data")])
    refuse(tar, UnsafeArchive, "'l' is a symbolic link")


def test_a_hard_link_to_a_system_file_is_refused(refuse):
    refuse(tar_with_members([hardlink("image.img", "/etc/passwd")]), UnsafeArchive, "is a hard link")


@pytest.mark.parametrize(
    "member, kind",
    [
        (char_device("image.img"), "a character device"),
        (block_device("image.img"), "a block device"),
        (fifo("image.img"), "a FIFO"),
        (directory("image.img"), "a directory"),
        (regular("image.img", b"data", type=tarfile.CONTTYPE), "a contiguous file"),
    ],
    ids=["chr", "blk", "fifo", "dir", "cont"],
)
def test_a_member_that_is_not_a_regular_file_is_refused(refuse, member, kind):
    refuse(tar_with_members([member]), UnsafeArchive, f"is {kind}; only a regular file is allowed")


def test_a_directory_before_the_image_is_refused(refuse):
    refuse(tar_with_members([directory("d"), ("d/image.img", b"data")]), UnsafeArchive, "'d' is a directory")


def test_a_second_member_is_refused(refuse):
    refuse(tar_with_members([("image.img", b"data"), ("extra", b"more")]), UnsafeArchive, "second member 'extra'")


def test_a_second_member_hidden_after_the_end_of_archive_is_refused(refuse):
    tar = tar_with_members([("image.img", b"data")]) + tar_with_members([("hidden", b"sneaky")])
    refuse(tar, UnsafeArchive, "data after its end-of-archive marker")


def test_a_second_member_with_a_corrupt_header_is_refused(refuse):
    """tarfile alone would take a bad header for the end of the archive."""
    tar = bytearray(tar_with_members([("image.img", b"data"), ("extra", b"more")]))
    tar[1024 + 148 : 1024 + 156] = b"0000000\0"  # the second header's checksum
    refuse(bytes(tar), UnsafeArchive, "second member|after its member")


def test_a_member_named_by_a_pax_header_is_checked_by_that_name(refuse):
    tar = tar_with_members([regular("image.img", b"data", pax_headers={"path": "../evil"})], format=tarfile.PAX_FORMAT)
    refuse(tar, UnsafeArchive, r"'\.\./evil' has a '\.\.'")


def test_an_empty_archive_is_refused(refuse):
    refuse(end_of_archive(0), UnsafeArchive, "the image archive is empty")


def test_data_that_is_not_tar_is_refused(refuse):
    refuse(os.urandom(20000), UnsafeArchive, "not a valid tar stream")


def test_an_archive_cut_inside_its_member_is_refused(refuse):
    tar = tar_with_members([("image.img", os.urandom(5000))])[:3000]
    refuse(tar, UnsafeArchive, "not a valid tar stream|ends inside its member", size=5000)


@pytest.mark.parametrize("declared", [3, 5])
def test_a_member_whose_size_differs_from_the_manifest_is_refused(refuse, declared):
    refuse(
        tar_with_members([("image.img", b"data")]),
        DigestMismatch,
        f"4 bytes but the manifest says {declared}",
        size=declared,
    )


# ---------------------------------------------------------------- sizes and headers that would blow up


def test_a_member_claiming_more_than_the_manifest_allows_is_refused_at_its_header(refuse):
    tar = tar_header("image.img", 10 * 1024**3) + os.urandom(4096)
    refuse(tar, ImageTooLarge, r"claims 10737418240 bytes", size=1024)


def test_a_sparse_member_expanding_past_the_manifest_size_is_refused_before_writing(refuse):
    """A 2 GiB sparse member is a few KiB of tar: the stream cap alone would not catch it."""
    tar = gnu_sparse_tar("image.img", 2 * 1024**3, [(0, b"x" * 512)])
    assert len(tar) < 20000
    refuse(tar, ImageTooLarge, "claims 2147483648 bytes", size=1024 * 1024)


def test_an_image_larger_than_the_server_accepts_is_refused_before_any_work(refuse):
    tar = gnu_sparse_tar("image.img", 2 * 1024**3, [(0, b"x" * 512)])
    refuse(tar, ImageTooLarge, "the image is 2147483648 bytes; at most 1073741824", size=2 * 1024**3, max_size=1024**3)


def test_a_long_name_record_over_the_limit_is_refused_before_it_is_read(refuse):
    refuse(tar_with_members([("n" * (METADATA_LIMIT + 1), b"data")]), UnsafeArchive, "header record")


def test_a_pax_header_claiming_a_huge_record_is_refused(refuse):
    tar = tar_header("././@PaxHeader", 8 * 1024**3, type=tarfile.XHDTYPE) + os.urandom(8192)
    refuse(tar, UnsafeArchive, "header record", size=1024)


def test_a_malformed_sparse_map_is_refused(refuse):
    """tarfile lets a bare ValueError out of its pax sparse-map parser: it still becomes a clear refusal."""
    garbage_map = b"not-a-number\n".ljust(512, b"\0")
    pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "image.img"}
    member = regular("GNUSparseFile.0/image.img", garbage_map, pax_headers={**pax_headers, "GNU.sparse.realsize": "4"})
    refuse(tar_with_members([member], format=tarfile.PAX_FORMAT), UnsafeArchive, "not a valid tar stream")


def test_a_sparse_map_larger_than_the_header_budget_is_refused(refuse):
    extents = [(i * 1024, b"x") for i in range(50_000)]  # about 2400 extension blocks
    tar = gnu_sparse_tar("image.img", 50_000 * 1024, extents)
    assert len(tar) > HEADER_BUDGET
    refuse(tar, UnsafeArchive, "headers take more than", size=50_000 * 1024)


# ---------------------------------------------------------------- parts, digests, keys


@pytest.fixture
def bundled(workspace, options):
    """A four-part bundle of random data (so any change to it is noticed)."""
    return bundle_image(workspace.write_image(os.urandom(200_000)), workspace.bundle, part_size=65536, **options)


def rewrite_manifest(bundled, user, **changes):
    with open(bundled.manifest_path, "wb") as f:
        f.write(rebuild_manifest(bundled.manifest, private_key=user.key, **changes))


def test_a_part_that_does_not_match_its_digest_is_refused(workspace, cloud, bundled):
    with open(bundled.part_paths[1], "r+b") as f:
        f.seek(100)
        f.write(b"\xff" if f.read(1) != b"\xff" else b"\x00")
    assert_refused(
        workspace, bundled.manifest_path, cloud.key, DigestMismatch, r"part 1 \(disk.img.part.01\) does not match"
    )


def test_a_manifest_with_a_wrong_part_digest_is_refused(workspace, cloud, user, bundled):
    parts = list(bundled.manifest.parts)
    parts[2] = Part(2, parts[2].filename, "0" * 40)
    rewrite_manifest(bundled, user, parts=parts)
    assert_refused(workspace, bundled.manifest_path, cloud.key, DigestMismatch, "part 2 .* does not match")


def test_a_missing_part_is_refused(workspace, cloud, bundled):
    os.unlink(bundled.part_paths[3])
    assert_refused(workspace, bundled.manifest_path, cloud.key, MissingPart, r"part 3 \(disk.img.part.03\) is missing")


def test_a_wrong_image_digest_is_refused_after_everything_else_checked_out(workspace, cloud, user, bundled):
    rewrite_manifest(bundled, user, image_digest="1" * 40)
    assert_refused(
        workspace, bundled.manifest_path, cloud.key, DigestMismatch, "does not match the digest in its manifest"
    )


@pytest.mark.parametrize("cut", [5, 16], ids=["mid-block", "whole-block"])
def test_a_truncated_last_part_is_a_decrypt_error(workspace, cloud, user, bundled, cut):
    """Truncated, with the manifest made to agree: the decryption itself notices."""
    path = bundled.part_paths[-1]
    data = open(path, "rb").read()[:-cut]
    open(path, "wb").write(data)
    parts = list(bundled.manifest.parts)
    parts[-1] = Part(parts[-1].index, parts[-1].filename, hashlib.sha1(data).hexdigest())
    rewrite_manifest(bundled, user, parts=parts)
    assert_refused(workspace, bundled.manifest_path, cloud.key, DecryptError, "AES blocks|padding|ends early|gzip")


def test_a_dropped_last_part_is_a_decrypt_error(workspace, cloud, user, bundled):
    rewrite_manifest(bundled, user, parts=bundled.manifest.parts[:-1])
    assert_refused(workspace, bundled.manifest_path, cloud.key, DecryptError, "padding|ends early|gzip")


def test_parts_in_the_wrong_order_are_a_decrypt_error(workspace, cloud, user, bundled):
    first, second, *rest = bundled.manifest.parts
    swapped = [Part(0, second.filename, second.digest), Part(1, first.filename, first.digest), *rest]
    rewrite_manifest(bundled, user, parts=swapped)
    assert_refused(workspace, bundled.manifest_path, cloud.key, DecryptError, "gzip")


def test_corrupt_ciphertext_with_matching_digests_is_a_decrypt_error(workspace, cloud, user, bundled):
    path = bundled.part_paths[0]
    data = bytearray(open(path, "rb").read())
    data[30000] ^= 0xFF
    open(path, "wb").write(data)
    parts = list(bundled.manifest.parts)
    parts[0] = Part(0, parts[0].filename, hashlib.sha1(data).hexdigest())
    rewrite_manifest(bundled, user, parts=parts)
    assert_refused(workspace, bundled.manifest_path, cloud.key, DecryptError, "not valid gzip")


def test_a_bundle_for_another_cloud_is_a_decrypt_error(workspace, stranger, bundled):
    assert_refused(
        workspace, bundled.manifest_path, stranger.key, DecryptError, "cannot be decrypted with this private key"
    )


def test_part_names_outside_the_bundle_folder_are_refused(workspace, cloud, user, bundled):
    """nova bug 885167: part names must never reach outside the bundle's own place."""
    secret = workspace.root / "secret"
    secret.write_bytes(b"do not read")
    parts = [Part(0, "../secret", bundled.manifest.parts[0].digest), *bundled.manifest.parts[1:]]
    rewrite_manifest(bundled, user, parts=parts)
    assert_refused(workspace, bundled.manifest_path, cloud.key, ManifestError, "has a directory in it")


def test_a_manifest_without_bundled_size_is_written_without_it_and_parses(bundled, user):
    """Old manifests carry no <bundled_size>; rewriting one must not invent "None"."""
    data = rebuild_manifest(bundled.manifest, private_key=user.key, bundled_size=None)
    assert b"bundled_size" not in data
    assert parse_manifest(data).bundled_size is None
