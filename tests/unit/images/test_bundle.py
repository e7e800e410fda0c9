"""Bundling writes what euca2ools 3.1+ writes (docs/bundle-format.md §2, §4)."""

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile

import pytest

from images.bundle import bundle_image, bundle_stream
from images.crypto import Decryptor, unwrap_secret, verify_signature
from images.parts import part_file_name
from images.unbundle import unbundle_files

EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"


def ciphertext_of(result):
    return b"".join(open(path, "rb").read() for path in result.part_paths)


def tar_stream_of(result, cloud):
    key = unwrap_secret(cloud.key, result.manifest.ec2_encrypted_key)
    iv = unwrap_secret(cloud.key, result.manifest.ec2_encrypted_iv)
    decryptor = Decryptor(key, iv)
    compressed = decryptor.update(ciphertext_of(result)) + decryptor.finalize()
    return compressed, gzip.decompress(compressed)


def test_the_tar_stream_is_one_gnu_member_as_euca2ools_writes_it(workspace, options, cloud, image_bytes):
    result = bundle_image(workspace.write_image(image_bytes), workspace.bundle, **options)
    _, tar = tar_stream_of(result, cloud)
    header = tar[:512]
    assert header[:100] == b"disk.img".ljust(100, b"\0")
    assert header[100:108] == b"0000644\0"
    assert header[108:116] == header[116:124] == b"0000000\0"  # uid, gid
    assert header[124:136] == b"%011o\0" % len(image_bytes)
    assert header[136:148] == b"00000000000\0"  # mtime 0
    assert header[154:156] == b"\0 "  # checksum: 6 octal digits, NUL, space
    assert header[156:157] == b"0"
    assert header[257:265] == b"ustar  \0"  # GNU magic
    assert header[265:329] == bytes(64)  # no user or group names
    assert header[329:345] == b"0000000\0" * 2  # devmajor, devminor
    assert int(header[148:154], 8) == sum(header[:148]) + 8 * 32 + sum(header[156:])
    data_end = 512 + len(image_bytes)
    assert tar[512:data_end] == image_bytes
    assert tar[data_end:].count(0) == len(tar) - data_end  # padding, end blocks and record fill
    assert len(tar) % 10240 == 0 and len(tar) >= data_end + 1024
    # The image digest is the SHA1 of that whole stream, not of the image.
    assert result.manifest.image_digest == hashlib.sha1(tar).hexdigest()
    assert result.manifest.image_digest != hashlib.sha1(image_bytes).hexdigest()


def test_the_gzip_stream_has_no_name_and_mtime_zero(workspace, options, cloud, image_bytes):
    result = bundle_image(workspace.write_image(image_bytes), workspace.bundle, **options)
    compressed, _ = tar_stream_of(result, cloud)
    assert compressed[:4] == b"\x1f\x8b\x08\x00"  # deflate, no FNAME or other flags
    assert compressed[4:8] == bytes(4)


def test_parts_are_cut_at_part_size_and_named_with_two_digits(workspace, options, image_bytes):
    result = bundle_image(workspace.write_image(os.urandom(300_000)), workspace.bundle, part_size=65536, **options)
    sizes = [os.path.getsize(path) for path in result.part_paths]
    assert len(sizes) == 5 and sizes[:-1] == [65536] * 4 and 0 < sizes[-1] < 65536
    assert [os.path.basename(p) for p in result.part_paths] == [f"disk.img.part.0{i}" for i in range(5)]
    assert [p.filename for p in result.manifest.parts] == [f"disk.img.part.0{i}" for i in range(5)]
    for part, path in zip(result.manifest.parts, result.part_paths, strict=True):
        assert part.digest == hashlib.sha1(open(path, "rb").read()).hexdigest()
    assert result.manifest.bundled_size == sum(sizes)
    assert sorted(os.listdir(workspace.bundle)) == sorted(
        [os.path.basename(p) for p in result.part_paths] + ["disk.img.manifest.xml"]
    )


def test_part_names_grow_past_two_digits():
    assert part_file_name("x", 0) == "x.part.00"
    assert part_file_name("x", 99) == "x.part.99"
    assert part_file_name("x", 100) == "x.part.100"


def test_ciphertext_of_an_exact_multiple_of_part_size_ends_with_an_empty_part(workspace, options, cloud, image_bytes):
    image = workspace.write_image(image_bytes)
    # The same image always compresses to the same length: measure it, then cut it evenly.
    probe_folder = workspace.root / "probe"
    probe_folder.mkdir()
    length = bundle_image(image, probe_folder, **options).manifest.bundled_size
    result = bundle_image(image, workspace.bundle, part_size=length // 4, **options)
    assert length % (length // 4) == 0
    assert len(result.part_paths) == 5
    assert os.path.getsize(result.part_paths[-1]) == 0
    assert result.manifest.parts[-1].digest == EMPTY_SHA1
    assert result.manifest.bundled_size == length
    unbundle_files(result.manifest_path, cloud.key, workspace.output)
    assert workspace.output.read_bytes() == image_bytes


def test_the_manifest_is_signed_and_keys_are_wrapped_for_cloud_and_user(workspace, options, cloud, user):
    result = bundle_image(workspace.write_image(b"x" * 1000), workspace.bundle, **options)
    manifest = result.manifest
    assert verify_signature(manifest, [user.certificate])
    assert manifest.user == "123456789012"  # dashes removed
    assert unwrap_secret(cloud.key, manifest.ec2_encrypted_key) == unwrap_secret(user.key, manifest.user_encrypted_key)
    assert unwrap_secret(cloud.key, manifest.ec2_encrypted_iv) == unwrap_secret(user.key, manifest.user_encrypted_iv)
    assert open(result.manifest_path, "rb").read().startswith(b"<?xml version='1.0' encoding='ASCII'?>\n<manifest>")


def test_without_user_keys_the_manifest_is_unsigned_with_empty_user_keys(workspace, cloud):
    result = bundle_image(
        workspace.write_image(b"x" * 1000), workspace.bundle, user_id="1", cloud_certificate=cloud.certificate
    )
    assert result.manifest.signature is None
    assert result.manifest.user_encrypted_key == result.manifest.user_encrypted_iv == ""
    assert b"<signature>UNSIGNED</signature>" in open(result.manifest_path, "rb").read()


def test_machine_configuration_carries_what_was_asked(workspace, options):
    result = bundle_image(
        workspace.write_image(b"x"),
        workspace.bundle,
        prefix="centos.img",
        arch="i386",
        kernel_id="eki-12345678",
        ramdisk_id="eri-87654321",
        block_device_mapping={"root": "/dev/sda1", "ami": "sda1", "ephemeral0": "sda2"},
        **options,
    )
    manifest = result.manifest
    assert (manifest.name, manifest.architecture, manifest.kernel_id, manifest.ramdisk_id) == (
        "centos.img",
        "i386",
        "eki-12345678",
        "eri-87654321",
    )
    assert manifest.block_device_mapping == (("ami", "sda1"), ("ephemeral0", "sda2"), ("root", "/dev/sda1"))
    assert os.path.basename(result.manifest_path) == "centos.img.manifest.xml"


def test_a_kernel_bundle_has_no_block_device_mapping(workspace, options):
    result = bundle_image(
        workspace.write_image(b"k"),
        workspace.bundle,
        image_type="kernel",
        kernel_id="true",
        block_device_mapping={"root": "/dev/sda1"},
        **options,
    )
    assert (result.manifest.type, result.manifest.kernel_id, result.manifest.block_device_mapping) == (
        "kernel",
        "true",
        (),
    )


def test_progress_counts_the_tar_stream(workspace, options, image_bytes):
    seen = []
    bundle_image(workspace.write_image(image_bytes), workspace.bundle, on_progress=seen.append, **options)
    assert seen == sorted(seen) and seen[-1] % 10240 == 0 and seen[-1] > len(image_bytes)


class Cancelled(Exception):
    pass


def test_a_failure_midway_removes_every_part_and_passes_the_exception_through(workspace, options):
    image = workspace.write_image(os.urandom(200_000))
    before = workspace.snapshot()

    def cancel(done):
        if done > 100_000:
            raise Cancelled

    with pytest.raises(Cancelled):
        bundle_image(image, workspace.bundle, part_size=16384, on_progress=cancel, **options)
    assert workspace.snapshot() == before


@pytest.mark.parametrize("prefix", ["../escape", "a/b", "..", ""])
def test_a_prefix_that_is_not_a_plain_name_is_refused(workspace, options, prefix):
    with pytest.raises(ValueError):
        bundle_stream(io.BytesIO(b""), workspace.bundle, prefix=prefix or "", size=0, **options)
    assert not os.listdir(workspace.bundle)


def test_gzip_data_needs_its_image_digest(workspace, options):
    with pytest.raises(ValueError, match="image_digest"):
        bundle_stream(io.BytesIO(b""), workspace.bundle, prefix="x", size=0, gzipped=True, **options)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_ciphertext_is_what_openssl_enc_decrypts(workspace, options, cloud, image_bytes):
    """Byte-compatible with `openssl enc -d -aes-128-cbc -K key -iv iv` (§2.4)."""
    result = bundle_image(workspace.write_image(image_bytes), workspace.bundle, part_size=20000, **options)
    key = unwrap_secret(cloud.key, result.manifest.ec2_encrypted_key).hex()
    iv = unwrap_secret(cloud.key, result.manifest.ec2_encrypted_iv).hex()
    decrypted = subprocess.run(
        ["openssl", "enc", "-d", "-aes-128-cbc", "-K", key, "-iv", iv],
        input=ciphertext_of(result),
        capture_output=True,
        check=True,
    ).stdout
    member = tarfile.open(fileobj=io.BytesIO(gzip.decompress(decrypted))).extractfile("disk.img")
    assert member.read() == image_bytes
