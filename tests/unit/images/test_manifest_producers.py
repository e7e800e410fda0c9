"""Every producer's manifest shape parses, verifies and yields the same facts (docs/bundle-format.md §9)."""

import pytest

from images.crypto import verify_signature
from images.manifest import Part, image_type, parse_manifest
from tests.unit.images import producer_manifests as shapes
from tests.unit.images.producer_manifests import EC2_IV, EC2_KEY, IMAGE_DIGEST, PART_DIGESTS, USER_IV, USER_KEY

ALL_SHAPES = {
    "euca2ools 1.x/2.x": shapes.EUCA2OOLS_1X_KERNEL,
    "euca2ools 3.0": shapes.EUCA2OOLS_30_KERNEL,
    "euca2ools 3.1+": shapes.EUCA2OOLS_3X_MACHINE,
    "EC2 AMI tools": shapes.AMI_TOOLS_MACHINE,
    "version 2007-08-29": shapes.VERSION_2007_08_29,
    "version 3": shapes.VERSION_3,
}


@pytest.mark.parametrize("shape", ALL_SHAPES.values(), ids=ALL_SHAPES.keys())
def test_every_shape_parses_and_its_signature_verifies(shape, user, stranger):
    manifest = parse_manifest(shapes.signed(shape, user.key))
    assert manifest.image_digest == IMAGE_DIGEST
    assert manifest.ec2_encrypted_key == EC2_KEY and manifest.ec2_encrypted_iv == EC2_IV
    assert manifest.user_encrypted_key == USER_KEY and manifest.user_encrypted_iv == USER_IV
    assert manifest.parts[0].digest == PART_DIGESTS[0]
    assert verify_signature(manifest, [user.certificate])
    assert not verify_signature(manifest, [stranger.certificate])


def test_euca2ools_1x_one_line_manifest(user):
    manifest = parse_manifest(shapes.signed(shapes.EUCA2OOLS_1X_KERNEL, user.key))
    assert manifest.bundler_name == "euca-tools" and manifest.bundler_version == "1.3.2"
    assert manifest.type == "machine" and manifest.kernel_id == "true"
    assert manifest.block_device_mapping == (("ami", "sda1"), ("root", "/dev/sda1"))
    assert manifest.parts == (
        Part(0, "vmlinuz-2.6.28.part.00", PART_DIGESTS[0]),
        Part(1, "vmlinuz-2.6.28.part.01", PART_DIGESTS[1]),
    )
    assert (manifest.size, manifest.bundled_size) == (2686976, 2690000)
    # 1.x says "machine" for everything: kernel_id=true is the only signal (§7.3).
    assert image_type(manifest, "bucket/kernels/k.manifest.xml") == "kernel"


def test_euca2ools_30_manifest_with_empty_release_and_unpadded_part_names(user):
    manifest = parse_manifest(shapes.signed(shapes.EUCA2OOLS_30_KERNEL, user.key))
    assert manifest.bundler_name == "euca2ools" and manifest.type == "kernel"
    assert [p.filename for p in manifest.parts] == ["vmlinuz-3.2.part.0", "vmlinuz-3.2.part.1"]
    assert image_type(manifest, "k.manifest.xml") == "kernel"


def test_euca2ools_3x_manifest(user):
    manifest = parse_manifest(shapes.signed(shapes.EUCA2OOLS_3X_MACHINE, user.key))
    assert (manifest.version, manifest.bundler_name, manifest.bundler_version) == ("2007-10-10", "euca2ools", "3.4.1")
    assert (manifest.architecture, manifest.kernel_id, manifest.ramdisk_id) == (
        "x86_64",
        "eki-12345678",
        "eri-87654321",
    )
    assert (manifest.name, manifest.user, manifest.type) == ("myimage.img", "123456789012", "machine")
    assert image_type(manifest, "bucket/myimage.img.manifest.xml") == "machine"


def test_ami_tools_manifest_with_whitespace_uppercase_hex_and_parts_out_of_order(user):
    manifest = parse_manifest(shapes.signed(shapes.AMI_TOOLS_MACHINE, user.key))
    assert manifest.bundler_name == "ec2-ami-tools"
    assert manifest.architecture == "i386"
    assert (manifest.kernel_id, manifest.ramdisk_id) == ("aki-a71cf9ce", "ari-a51cf9cc")
    assert manifest.block_device_mapping == (("ami", "sda1"),)
    assert manifest.parts == (Part(0, "my-ami.part.0", PART_DIGESTS[0]), Part(1, "my-ami.part.1", PART_DIGESTS[1]))


def test_version_2007_08_29_defaults_the_type(user):
    manifest = parse_manifest(shapes.signed(shapes.VERSION_2007_08_29, user.key))
    assert manifest.version == "2007-08-29"
    assert (manifest.architecture, manifest.type, manifest.kernel_id, manifest.ramdisk_id) == (
        "x86_64",
        "machine",
        None,
        None,
    )


def test_version_3_has_no_machine_configuration_and_signs_the_image_alone(user):
    manifest = parse_manifest(shapes.signed(shapes.VERSION_3, user.key))
    assert manifest.architecture == "i386"  # what the AMI tools and Eucalyptus assume
    assert manifest.signed_text.startswith(b"<image>") and manifest.signed_text.endswith(b"</image>")
    assert verify_signature(manifest, [user.certificate])


def test_the_signed_text_is_the_raw_bytes_of_both_elements(user):
    data = shapes.signed(shapes.AMI_TOOLS_MACHINE, user.key)
    manifest = parse_manifest(data)
    machine = data[data.index(b"<machine_configuration>") : data.index(b"</machine_configuration>") + 24]
    image = data[data.index(b"<image>") : data.index(b"</image>") + 8]
    assert manifest.signed_text == machine + image
    assert b"\n    <architecture> i386 </architecture>" in manifest.signed_text  # whitespace kept as written


def test_a_manifest_without_a_bundled_size_or_user_keys_is_fine(user):
    text = shapes.EUCA2OOLS_3X_MACHINE.replace("<bundled_size>26218640</bundled_size>", "")
    text = text.replace(USER_KEY, "").replace(USER_IV, "")
    manifest = parse_manifest(shapes.signed(text, user.key))
    assert manifest.bundled_size is None
    assert manifest.user_encrypted_key == manifest.user_encrypted_iv == ""


def test_unknown_elements_are_ignored(user):
    text = shapes.EUCA2OOLS_3X_MACHINE.replace(
        "<type>machine</type>", "<type>machine</type><comment_from_the_future>x</comment_from_the_future>"
    ).replace("</manifest>", "<extra><nested/></extra></manifest>")
    assert parse_manifest(shapes.signed(text, user.key)).type == "machine"


@pytest.mark.parametrize("signature", ["UNSIGNED", "unsigned", "", "  "])
def test_an_unsigned_manifest_has_no_signature(signature):
    data = shapes.EUCA2OOLS_3X_MACHINE.replace("@SIGNATURE@", signature).encode()
    assert parse_manifest(data).signature is None


@pytest.mark.parametrize(
    "type_text, kernel_id, ramdisk_id, key, expected",
    [
        ("kernel", None, None, "a.manifest.xml", "kernel"),
        ("ramdisk", None, None, "a.manifest.xml", "ramdisk"),
        ("machine", "true", None, "a.manifest.xml", "kernel"),
        ("machine", "YES", None, "a.manifest.xml", "kernel"),
        ("machine", None, "true", "a.manifest.xml", "ramdisk"),
        ("machine", None, None, "prefix/vmlinuz-5.10.manifest.xml", "kernel"),
        ("machine", None, None, "initrd.img.manifest.xml", "ramdisk"),
        ("machine", None, None, "vmlinuz/disk.manifest.xml", "machine"),  # the folder's name does not count
        ("machine", "eki-12345678", "eri-12345678", "disk.manifest.xml", "machine"),
    ],
)
def test_image_type_follows_eucalyptus_order(user, type_text, kernel_id, ramdisk_id, key, expected):
    machine = "<architecture>x86_64</architecture>"
    if kernel_id:
        machine += f"<kernel_id>{kernel_id}</kernel_id>"
    if ramdisk_id:
        machine += f"<ramdisk_id>{ramdisk_id}</ramdisk_id>"
    text = shapes.EUCA2OOLS_3X_MACHINE.replace("<type>machine</type>", f"<type>{type_text}</type>")
    start, end = text.index("<machine_configuration>"), text.index("</machine_configuration>")
    text = text[:start] + f"<machine_configuration>{machine}" + text[end:]
    assert image_type(parse_manifest(shapes.signed(text, user.key)), key) == expected
