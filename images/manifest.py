"""The bundle manifest: parse it safely and decide the image type (docs/bundle-format.md §4-§7, §9).

Parsing is strict about what could hurt (DTDs, sizes, counts, part names, a
second <image> that a signature check and a parser might see differently) and
lenient about what producers legitimately vary (element order, unknown
elements, whitespace, hex case, old manifest versions).
"""

import re
from dataclasses import dataclass
from typing import Union

from lxml import etree

from images.errors import ManifestError
from images.manifest_writer import UNSIGNED, build_manifest

__all__ = [
    "MAX_MANIFEST_SIZE",
    "MAX_PARTS",
    "Manifest",
    "Part",
    "build_manifest",
    "check_plain_file_name",
    "image_type",
    "parse_manifest",
]

MAX_MANIFEST_SIZE = 1024 * 1024
MAX_PARTS = 10000
# The AMI tools (and Eucalyptus) assume i386 when a manifest does not say.
DEFAULT_ARCHITECTURE = "i386"

_SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_DECIMAL = re.compile(r"[0-9]{1,20}")
# Encodings whose bytes are ASCII for ASCII text, so the byte-level checks and
# the signed-text rule below see what the parser sees.
_ASCII_COMPATIBLE = {"ascii", "us-ascii", "utf-8", "utf8", "iso-8859-1", "latin-1", "latin1"}


@dataclass(frozen=True)
class Part:
    index: int
    filename: str
    digest: str


@dataclass(frozen=True)
class Manifest:
    version: str
    bundler_name: str
    bundler_version: str
    architecture: str
    kernel_id: str | None
    ramdisk_id: str | None
    block_device_mapping: tuple
    name: str
    user: str
    type: str
    image_digest: str
    size: int
    bundled_size: int | None
    ec2_encrypted_key: str
    ec2_encrypted_iv: str
    user_encrypted_key: str
    user_encrypted_iv: str
    parts: tuple
    signature: str | None
    signed_text: bytes


# ---------------------------------------------------------------- parsing


def parse_manifest(data: Union[bytes, bytearray, memoryview]) -> Manifest:
    """Parse and validate a manifest; anything wrong is a ``ManifestError`` saying what."""
    data = bytes(data)
    _refuse_hostile_bytes(data)
    root = _parse_xml(data)
    if root.tag != "manifest":
        raise ManifestError("this is not a bundle manifest: the root element is not <manifest>")
    signed_text = _signed_text(data, root)
    machine = _only_child(root, "machine_configuration")
    image = _only_child(root, "image")
    bundler = _only_child(root, "bundler")
    parts = _parts(_required_child(image, "parts", "<image><parts>"))
    signature = _text(_only_child(root, "signature"))
    return Manifest(
        version=_text(_only_child(root, "version")),
        bundler_name=_text(_only_child(bundler, "name")),
        bundler_version=_text(_only_child(bundler, "version")),
        architecture=_text(_only_child(machine, "architecture")) or DEFAULT_ARCHITECTURE,
        kernel_id=_text(_only_child(machine, "kernel_id")) or None,
        ramdisk_id=_text(_only_child(machine, "ramdisk_id")) or None,
        block_device_mapping=_block_device_mapping(machine),
        name=_text(_only_child(image, "name")),
        user=_text(_only_child(image, "user")),
        type=_text(_only_child(image, "type")) or "machine",
        image_digest=_sha1(_required_child(image, "digest", "<image><digest>"), "the image digest"),
        size=_decimal(_required_child(image, "size", "<image><size>"), "<image><size>"),
        bundled_size=_optional_decimal(_only_child(image, "bundled_size"), "<image><bundled_size>"),
        ec2_encrypted_key=_encrypted(image, "ec2_encrypted_key", required=True),
        ec2_encrypted_iv=_encrypted(image, "ec2_encrypted_iv", required=True),
        user_encrypted_key=_encrypted(image, "user_encrypted_key", required=False),
        user_encrypted_iv=_encrypted(image, "user_encrypted_iv", required=False),
        parts=parts,
        signature=_signature(signature),
        signed_text=signed_text,
    )


def _refuse_hostile_bytes(data):
    if len(data) > MAX_MANIFEST_SIZE:
        raise ManifestError(f"the manifest is larger than {MAX_MANIFEST_SIZE} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # Bundle manifests never carry a DTD; refusing one outright rules out
        # entity expansion and external references whatever the parser does.
        raise ManifestError("the manifest contains a DTD (<!DOCTYPE or <!ENTITY), which manifests never have")
    if b"\0" in data:
        # UTF-16/32 would hide "<!DOCTYPE" and "<image>" from the byte checks.
        raise ManifestError("the manifest is not ASCII or UTF-8 text")


def _parse_xml(data):
    # A parser per call: lxml parsers must not be shared between threads.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise ManifestError(f"the manifest is not well-formed XML: {e}") from None
    if root is None:
        raise ManifestError("the manifest is empty")
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise ManifestError("the manifest contains a DTD, which manifests never have")
    if (info.encoding or "utf-8").lower() not in _ASCII_COMPATIBLE:
        raise ManifestError(f"the manifest's encoding {info.encoding} is not supported: use ASCII or UTF-8")
    return root


def _signed_text(data, root):
    """The raw bytes a producer signed: <machine_configuration>...</...> then <image>...</image> (§5).

    Taken from the bytes, never re-serialised. A manifest with more than one
    start tag of either element - counting ones hidden in comments or CDATA -
    is refused, so the signed copy is the one the parser reads.
    """
    machine = _raw_element(data, b"machine_configuration", root, required=False)
    image = _raw_element(data, b"image", root, required=True)
    return machine + image


def _raw_element(data, name, root, required):
    starts = list(re.finditer(rb"<" + name + rb"[\s/>]", data))
    ends = list(re.finditer(rb"</" + name + rb"\s*>", data))
    parsed = list(root.iter(name.decode()))
    label = "<" + name.decode() + ">"
    if len(starts) > 1 or len(ends) > 1 or len(parsed) > 1:
        raise ManifestError(f"the manifest has more than one {label} element")
    if not (len(starts) == len(ends) == len(parsed)):
        # A copy the parser does not see (in a comment or CDATA), or a
        # self-closed element: the signed bytes could not be told apart.
        raise ManifestError(f"the manifest's {label} element is hidden, empty or ambiguous")
    if not parsed:
        if required:
            raise ManifestError(f"the manifest has no {label} element")
        return b""
    if parsed[0].getparent() is not root:
        raise ManifestError(f"the manifest's {label} element is not where it belongs, directly in <manifest>")
    if ends[0].start() < starts[0].start():
        raise ManifestError(f"the manifest's {label} element is hidden, empty or ambiguous")
    return data[starts[0].start() : ends[0].end()]


def _children(element, name):
    return [] if element is None else [child for child in element if child.tag == name]


def _only_child(element, name):
    """The child named ``name``, None if absent; two of them would be ambiguous."""
    found = _children(element, name)
    if len(found) > 1:
        raise ManifestError(f"the manifest has more than one <{name}> where one is expected")
    return found[0] if found else None


def _required_child(element, name, label):
    child = _only_child(element, name)
    if child is None:
        raise ManifestError(f"the manifest has no {label}")
    return child


def _text(element):
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _decimal(element, label):
    text = _text(element)
    if not _DECIMAL.fullmatch(text):
        raise ManifestError(f"the manifest's {label} is not a non-negative whole number: {text[:40]!r}")
    return int(text)


def _optional_decimal(element, label):
    return _decimal(element, label) if _text(element) else None


def _sha1(element, label):
    algorithm = element.get("algorithm", "SHA1").strip()
    if algorithm.upper() != "SHA1":
        raise ManifestError(f"{label} uses algorithm {algorithm[:40]!r}; only SHA1 is supported")
    text = _text(element)
    if not _SHA1_HEX.fullmatch(text):
        raise ManifestError(f"{label} is not 40 hexadecimal digits: {text[:60]!r}")
    return text.lower()


def _encrypted(image, name, required):
    element = _only_child(image, name)
    if element is not None:
        algorithm = element.get("algorithm", "AES-128-CBC").strip()
        if algorithm.upper() != "AES-128-CBC":
            raise ManifestError(f"<{name}> uses cipher {algorithm[:40]!r}; only AES-128-CBC is supported")
    text = _text(element)
    if not text:
        if required:
            raise ManifestError(f"the manifest has no <{name}>")
        return ""
    if not _HEX.fullmatch(text):
        raise ManifestError(f"the manifest's <{name}> is not hexadecimal")
    return text.lower()


def _signature(text):
    if not text or text.upper() == UNSIGNED:
        return None
    if not _HEX.fullmatch(text):
        raise ManifestError("the manifest's <signature> is neither hexadecimal nor UNSIGNED")
    return text.lower()


def _block_device_mapping(machine):
    pairs = []
    for mapping_list in _children(machine, "block_device_mapping"):
        for mapping in _children(mapping_list, "mapping"):
            virtual = _text(_only_child(mapping, "virtual"))
            device = _text(_only_child(mapping, "device"))
            if virtual and device:
                pairs.append((virtual, device))
    return tuple(pairs)


def _parts(parts_element):
    count_text = parts_element.get("count", "").strip()
    if not _DECIMAL.fullmatch(count_text):
        raise ManifestError(f"the manifest's part count is not a whole number: {count_text[:40]!r}")
    count = int(count_text)
    if not 1 <= count <= MAX_PARTS:
        raise ManifestError(f"the manifest lists {count} parts; a bundle has between 1 and {MAX_PARTS}")
    elements = _children(parts_element, "part")
    if len(elements) != count:
        raise ManifestError(f"the manifest says it has {count} parts but lists {len(elements)}")
    by_index = {}
    for element in elements:
        index = _part_index(element, count)
        if index in by_index:
            raise ManifestError(f"the manifest lists part {index} twice")
        filename = _text(_required_child(element, "filename", f"file name for part {index}"))
        check_plain_file_name(filename, f"part {index}'s file name")
        digest = _sha1(_required_child(element, "digest", f"digest for part {index}"), f"part {index}'s digest")
        by_index[index] = Part(index, filename, digest)
    # Producers may write parts in any order: the index attribute is what counts.
    return tuple(by_index[i] for i in range(count))


def _part_index(element, count):
    text = element.get("index", "").strip()
    if not _DECIMAL.fullmatch(text) or int(text) >= count:
        raise ManifestError(f"the manifest has a part index {text[:40]!r} outside 0..{count - 1}")
    return int(text)


def check_plain_file_name(name: str, label: str) -> None:
    """Refuse anything but a plain file name: it must never reach outside its folder."""
    if name in ("", ".", ".."):
        raise ManifestError(f"{label} {name!r} is not a file name")
    if "/" in name or "\\" in name:
        raise ManifestError(f"{label} {name[:100]!r} has a directory in it; only plain file names are allowed")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise ManifestError(f"{label} {name[:100]!r} contains control characters")
    if len(name.encode("utf-8", "surrogatepass")) > 255:
        raise ManifestError(f"{label} is longer than 255 bytes")


# ---------------------------------------------------------------- image type


def image_type(manifest: Manifest, manifest_key: str) -> str:
    """machine, kernel or ramdisk, decided as Eucalyptus does (§7.3)."""
    declared = manifest.type.lower()
    if declared in ("kernel", "ramdisk"):
        return declared
    # 1.x/2.x always say "machine" and mark kernels and ramdisks this way.
    if _is_true(manifest.kernel_id):
        return "kernel"
    if _is_true(manifest.ramdisk_id):
        return "ramdisk"
    base_name = manifest_key.rsplit("/", 1)[-1]
    if base_name.startswith("vmlinuz"):
        return "kernel"
    if base_name.startswith("initrd"):
        return "ramdisk"
    return "machine"


def _is_true(value):
    return value is not None and value.lower() in ("true", "yes")
