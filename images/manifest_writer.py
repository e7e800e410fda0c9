"""Write a bundle manifest exactly as euca2ools 3.1+ does (docs/bundle-format.md §4.2, §5)."""

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Optional

from lxml import etree

from images.crypto import sign

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from images.manifest import Part

CURRENT_VERSION = "2007-10-10"
BUNDLER_NAME = "objectstore-bundle"
BUNDLER_VERSION = "0.1.0"
UNSIGNED = "UNSIGNED"


def build_manifest(
    *,
    name: str,
    user: str,
    image_digest: str,
    size: int,
    bundled_size: Optional[int],
    parts: Sequence["Part"],
    ec2_encrypted_key: str,
    ec2_encrypted_iv: str,
    user_encrypted_key: str = "",
    user_encrypted_iv: str = "",
    architecture: str = "x86_64",
    image_type: str = "machine",
    kernel_id: Optional[str] = None,
    ramdisk_id: Optional[str] = None,
    block_device_mapping: Iterable[tuple[str, str]] = (),
    product_codes: Iterable[str] = (),
    parts_count: Optional[int] = None,
    bundler_name: str = BUNDLER_NAME,
    bundler_version: str = BUNDLER_VERSION,
    bundler_release: str = "0",
    version: str = CURRENT_VERSION,
    private_key: Optional["RSAPrivateKey"] = None,
) -> bytes:
    """Serialise a manifest exactly as euca2ools 3.1+ does (§4.2), signed with ``private_key``.

    Nothing is validated, and everything is written as given (mappings in the
    order given, part indices as given, ``parts_count`` instead of the real
    count): tests build hostile manifests with it. ``bundle`` supplies the
    canonical values.
    """
    root = etree.Element("manifest")
    _sub(root, "version", version)
    bundler = _sub(root, "bundler")
    _sub(bundler, "name", bundler_name)
    _sub(bundler, "version", bundler_version)
    _sub(bundler, "release", bundler_release)

    machine = _sub(root, "machine_configuration")
    _sub(machine, "architecture", architecture)
    if block_device_mapping:
        mappings = _sub(machine, "block_device_mapping")
        for virtual, device in block_device_mapping:
            mapping = _sub(mappings, "mapping")
            _sub(mapping, "virtual", virtual)
            _sub(mapping, "device", device)
    if product_codes:
        codes = _sub(machine, "product_codes")
        for code in product_codes:
            _sub(codes, "product_code", code)
    if kernel_id:
        _sub(machine, "kernel_id", kernel_id)
    if ramdisk_id:
        _sub(machine, "ramdisk_id", ramdisk_id)

    image = _sub(root, "image")
    _sub(image, "name", name)
    _sub(image, "user", user)
    _sub(image, "type", image_type)
    _sub(image, "digest", image_digest, algorithm="SHA1")
    _sub(image, "size", str(size))
    if bundled_size is not None:  # old manifests have none: their copies must parse too
        _sub(image, "bundled_size", str(bundled_size))
    _sub(image, "ec2_encrypted_key", ec2_encrypted_key, algorithm="AES-128-CBC")
    _sub(image, "user_encrypted_key", user_encrypted_key, algorithm="AES-128-CBC")
    _sub(image, "ec2_encrypted_iv", ec2_encrypted_iv)
    _sub(image, "user_encrypted_iv", user_encrypted_iv)
    parts_element = _sub(image, "parts", count=str(len(parts) if parts_count is None else parts_count))
    for part in parts:
        part_element = _sub(parts_element, "part", index=str(part.index))
        _sub(part_element, "filename", part.filename)
        _sub(part_element, "digest", part.digest, algorithm="SHA1")

    # What euca2ools signs: each element serialised on its own, which is also
    # exactly how the elements appear in the whole document written below.
    signed_text = etree.tostring(machine) + etree.tostring(image)
    _sub(root, "signature", sign(private_key, signed_text) if private_key is not None else UNSIGNED)
    return etree.tostring(root, xml_declaration=True, encoding="ASCII")


def _sub(parent, tag, text=None, **attributes):
    element = etree.SubElement(parent, tag, attributes)
    if text:
        element.text = text
    return element
