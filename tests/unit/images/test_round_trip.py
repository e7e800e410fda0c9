"""Bundle, then unbundle: the same bytes come back, from every tar and gzip shape producers make."""

import gzip
import hashlib
import io
import os
import resource
import tarfile
import tracemalloc

import pytest

from images.bundle import bundle_image, bundle_stream
from images.errors import BundleError, DecryptError, MissingPart
from images.testing import bundle_tar, gnu_sparse_tar, pax_sparse_tar, regular, sparse_contents, tar_with_members
from images.unbundle import unbundle, unbundle_files
from tests.unit.images.helpers import assert_refused


def test_an_image_comes_back_byte_for_byte(workspace, options, cloud, image_bytes):
    result = bundle_image(workspace.write_image(image_bytes), workspace.bundle, **options)
    outcome = unbundle_files(result.manifest_path, cloud.key, workspace.output)
    assert workspace.output.read_bytes() == image_bytes
    assert outcome.size == len(image_bytes)
    assert outcome.tar_sha1 == result.manifest.image_digest
    assert outcome.member_name == "disk.img"
    assert os.stat(workspace.output).st_mode & 0o777 == 0o600


def test_a_many_part_image_comes_back(workspace, options, cloud):
    image = os.urandom(400_000)
    result = bundle_image(workspace.write_image(image), workspace.bundle, part_size=65536, **options)
    assert len(result.part_paths) == 7
    unbundle_files(result.manifest_path, cloud.key, workspace.output, chunk_size=10_000)
    assert workspace.output.read_bytes() == image


def test_the_user_can_unbundle_with_their_own_key(workspace, options, user, image_bytes):
    result = bundle_image(workspace.write_image(image_bytes), workspace.bundle, **options)
    unbundle_files(result.manifest_path, user.key, workspace.output, which="user")
    assert workspace.output.read_bytes() == image_bytes


def test_without_a_user_certificate_the_user_cannot_unbundle(workspace, cloud, user):
    result = bundle_image(
        workspace.write_image(b"x"), workspace.bundle, user_id="1", cloud_certificate=cloud.certificate
    )
    assert_refused(
        workspace, result.manifest_path, user.key, DecryptError, "no key encrypted for its user", which="user"
    )


def test_an_empty_image_comes_back_empty(workspace, options, cloud):
    result = bundle_image(workspace.write_image(b""), workspace.bundle, **options)
    assert unbundle_files(result.manifest_path, cloud.key, workspace.output).size == 0
    assert workspace.output.read_bytes() == b""


def test_a_prefix_longer_than_a_tar_name_field_comes_back(workspace, options, cloud):
    prefix = "a-very-long-image-name-" * 6 + ".img"
    result = bundle_image(workspace.write_image(b"long"), workspace.bundle, prefix=prefix, **options)
    assert unbundle_files(result.manifest_path, cloud.key, workspace.output).member_name == prefix


def test_stages_and_progress_are_reported(workspace, options, cloud, image_bytes):
    result = bundle_image(workspace.write_image(image_bytes), workspace.bundle, part_size=65536, **options)
    stages, progress = [], []
    unbundle_files(
        result.manifest_path, cloud.key, workspace.output, on_stage=stages.append, on_progress=progress.append
    )
    assert stages == ["decrypting", "untarring"]
    assert progress == sorted(progress) and progress[-1] == result.manifest.bundled_size


class Cancelled(ValueError):
    """A ValueError, as tarfile raises on bad input: it must still come out unchanged."""


@pytest.mark.parametrize("when", ["progress", "untarring"])
def test_a_callback_cancels_by_raising_and_its_exception_comes_out_unchanged(workspace, options, cloud, when):
    result = bundle_image(workspace.write_image(os.urandom(300_000)), workspace.bundle, part_size=65536, **options)

    def on_progress(done):
        if when == "progress" and done > 100_000:
            raise Cancelled

    def on_stage(stage):
        if stage == when:
            raise Cancelled

    before = workspace.snapshot()
    with pytest.raises(Cancelled):
        unbundle_files(
            result.manifest_path,
            cloud.key,
            workspace.output,
            on_progress=on_progress,
            on_stage=on_stage,
            chunk_size=16384,
        )
    assert workspace.snapshot() == before


def test_an_existing_output_file_is_neither_overwritten_nor_removed(workspace, options, cloud):
    result = bundle_image(workspace.write_image(b"new"), workspace.bundle, **options)
    workspace.output.write_bytes(b"precious")
    with pytest.raises(BundleError, match="already exists"):
        unbundle_files(result.manifest_path, cloud.key, workspace.output)
    assert workspace.output.read_bytes() == b"precious"


def test_an_output_path_that_is_a_symlink_is_not_followed(workspace, options, cloud):
    result = bundle_image(workspace.write_image(b"new"), workspace.bundle, **options)
    target = workspace.root / "elsewhere"
    workspace.output.symlink_to(target)
    with pytest.raises(BundleError, match="already exists"):
        unbundle_files(result.manifest_path, cloud.key, workspace.output)
    assert not target.exists()


def test_callers_resolve_part_names_themselves(workspace, options, cloud, image_bytes):
    """The registry hands in its own open_part: part names are looked up, never used as paths."""
    result = bundle_image(workspace.write_image(image_bytes), workspace.bundle, part_size=65536, **options)
    store = {os.path.basename(path): open(path, "rb").read() for path in result.part_paths}
    opened = []

    def open_part(part):
        opened.append(part.index)
        return io.BytesIO(store[part.filename])

    unbundle(result.manifest, open_part, cloud.key, str(workspace.output))
    assert opened == list(range(len(result.part_paths)))
    assert workspace.output.read_bytes() == image_bytes


def test_a_missing_part_raised_by_the_caller_comes_out_unchanged(workspace, options, cloud):
    result = bundle_image(workspace.write_image(os.urandom(200_000)), workspace.bundle, part_size=65536, **options)

    def open_part(part):
        if part.index == 2:
            raise MissingPart("part 2 is not in the bucket")
        return open(result.part_paths[part.index], "rb")

    with pytest.raises(MissingPart, match="not in the bucket"):
        unbundle(result.manifest, open_part, cloud.key, str(workspace.output))
    assert not os.listdir(workspace.out)


# ---------------------------------------------------------------- other producers' tar and gzip


@pytest.mark.parametrize(
    "tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT], ids=["gnu", "pax", "ustar"]
)
def test_gnu_ustar_and_pax_archives_come_back(workspace, options, cloud, tar_format, image_bytes):
    tar = tar_with_members([regular("centos.img", image_bytes, uid=500, uname="builder")], format=tar_format)
    result = bundle_tar(tar, workspace.bundle, size=len(image_bytes), **options)
    assert unbundle_files(result.manifest_path, cloud.key, workspace.output).member_name == "centos.img"
    assert workspace.output.read_bytes() == image_bytes


def test_a_pax_header_with_a_long_name_and_non_ascii_comes_back(workspace, options, cloud):
    name = "ïmage-" + "x" * 200
    tar = tar_with_members([regular(name, b"data", pax_headers={"comment": "made by hand"})], format=tarfile.PAX_FORMAT)
    result = bundle_tar(tar, workspace.bundle, size=4, **options)
    assert unbundle_files(result.manifest_path, cloud.key, workspace.output).member_name == name


def test_an_old_style_member_type_nul_comes_back(workspace, options, cloud):
    tar = tar_with_members([regular("disk.img", b"old", type=tarfile.AREGTYPE)])
    result = bundle_tar(tar, workspace.bundle, size=3, **options)
    unbundle_files(result.manifest_path, cloud.key, workspace.output)
    assert workspace.output.read_bytes() == b"old"


EXTENTS = [(0, b"boot" * 256), (8192, os.urandom(512)), (40960, b"end!" * 128)]


@pytest.mark.parametrize("builder", [gnu_sparse_tar, pax_sparse_tar], ids=["gnu-S", "pax-1.0"])
def test_sparse_members_come_back_with_their_holes(workspace, options, cloud, builder):
    """GNU tar -S archives (1.x/2.x, AMI tools): tarfile's stream mode reads both sparse forms."""
    real_size = 100_000
    tar = builder("disk.img", real_size, EXTENTS)
    assert len(tar) < real_size  # the holes are not in the stream: only the manifest size bounds the output
    result = bundle_tar(tar, workspace.bundle, size=real_size, **options)
    assert unbundle_files(result.manifest_path, cloud.key, workspace.output).size == real_size
    assert workspace.output.read_bytes() == sparse_contents(real_size, EXTENTS)


def test_concatenated_gzip_members_and_level_9_are_read(workspace, options, cloud, image_bytes):
    tar = tar_with_members([("disk.img", image_bytes)])
    middle = len(tar) // 3
    gzip_data = gzip.compress(tar[:middle], 9, mtime=1234) + gzip.compress(tar[middle:], 1)
    result = bundle_stream(
        io.BytesIO(gzip_data),
        workspace.bundle,
        prefix="disk.img",
        size=len(image_bytes),
        gzipped=True,
        image_digest=hashlib.sha1(tar).hexdigest(),
        **options,
    )
    unbundle_files(result.manifest_path, cloud.key, workspace.output)
    assert workspace.output.read_bytes() == image_bytes


def test_memory_stays_flat_whatever_the_image_size(workspace, options, cloud):
    image = (os.urandom(65536) + bytes(3 * 65536)) * 96  # 24 MiB
    result = bundle_image(workspace.write_image(image), workspace.bundle, part_size=4 * 1024 * 1024, **options)
    del image
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        unbundle_files(result.manifest_path, cloud.key, workspace.output, chunk_size=256 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak traced memory {peak} bytes"
    assert os.path.getsize(workspace.output) == 24 * 1024 * 1024
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_rss < 32 * 1024  # KiB on Linux
