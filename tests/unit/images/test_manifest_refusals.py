"""Hostile and malformed manifests are refused with a clear ManifestError (docs/bundle-format.md §5, §6.1-6.2, §10)."""

import pytest
from lxml import etree

from images import manifest as manifest_module
from images.errors import ManifestError
from images.manifest import MAX_MANIFEST_SIZE, parse_manifest
from tests.unit.images.producer_manifests import EUCA2OOLS_3X_MACHINE, IMAGE_DIGEST, PART_DIGESTS

GOOD = EUCA2OOLS_3X_MACHINE.replace("@SIGNATURE@", "UNSIGNED")
BODY = GOOD.split("\n", 1)[1]  # without the XML declaration


def refused(text, match):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    with pytest.raises(ManifestError, match=match) as info:
        parse_manifest(data)
    assert "\n" not in str(info.value)
    return info.value


def test_the_unmodified_manifest_parses():
    """The baseline every refusal below departs from by one change."""
    assert parse_manifest(GOOD.encode()).image_digest == IMAGE_DIGEST


# ---------------------------------------------------------------- XML attacks


def test_an_external_entity_is_refused_and_never_resolved():
    text = '<?xml version="1.0"?><!DOCTYPE manifest [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + BODY.replace(
        "<name>myimage.img</name>", "<name>&e;</name>"
    )
    error = refused(text, "DTD")
    assert "root:" not in str(error)


def test_billion_laughs_is_refused_at_once(monkeypatch):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    text = f"<?xml version='1.0'?><!DOCTYPE manifest [{entities}]>" + BODY.replace(
        "<name>myimage.img</name>", "<name>&lol9;</name>"
    )
    # "At once" is no parse at all, not a time: the byte check refuses it before any XML
    # parser could expand an entity. The good manifest shows the count sees a parse.
    parsed = []

    class RecordingEtree:
        def __getattr__(self, name):
            return getattr(etree, name)

        def fromstring(self, data, *args, **kwargs):
            parsed.append(data)
            return etree.fromstring(data, *args, **kwargs)

    monkeypatch.setattr(manifest_module, "etree", RecordingEtree())
    parse_manifest(GOOD.encode())
    assert len(parsed) == 1
    refused(text, "DTD")
    assert len(parsed) == 1, "the DTD reached the XML parser"


def test_an_external_dtd_is_refused():
    refused('<?xml version="1.0"?><!DOCTYPE manifest SYSTEM "http://127.0.0.1:9/x.dtd">' + BODY, "DTD")


def test_a_utf16_manifest_cannot_smuggle_a_dtd_past_the_byte_check():
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE manifest [<!ENTITY e "x">]>' + BODY
    refused(text.encode("utf-16"), "not ASCII or UTF-8")


def test_a_manifest_over_the_size_cap_is_refused():
    padding = " " * (MAX_MANIFEST_SIZE + 1 - len(GOOD.encode()))
    refused(GOOD.replace("</manifest>", padding + "</manifest>"), "larger than")


def test_a_manifest_at_the_size_cap_is_accepted():
    padding = " " * (MAX_MANIFEST_SIZE - len(GOOD.encode()))
    assert len((GOOD.replace("</manifest>", padding + "</manifest>")).encode()) == MAX_MANIFEST_SIZE
    parse_manifest(GOOD.replace("</manifest>", padding + "</manifest>").encode())


@pytest.mark.parametrize("text", ["", "not xml", "<manifest><image>", "<manifest></image></manifest>"])
def test_malformed_xml_is_refused(text):
    refused(text, "not well-formed|empty")


def test_a_root_other_than_manifest_is_refused():
    refused(GOOD.replace("<manifest>", "<bundle>").replace("</manifest>", "</bundle>"), "root element")


def test_a_namespaced_manifest_is_refused():
    refused(GOOD.replace("<manifest>", '<manifest xmlns="urn:x">'), "root element")


# ---------------------------------------------------------------- a second copy of the signed elements


IMAGE = GOOD[GOOD.index("<image>") : GOOD.index("</image>") + len("</image>")]
MACHINE = GOOD[GOOD.index("<machine_configuration>") : GOOD.index("</machine_configuration>") + 24]


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("</image>", "</image>" + IMAGE),
        # Signed copy first, in a comment; the parser would read the second.
        GOOD.replace("<image>", "<!--" + IMAGE + "--><image>", 1),
        GOOD.replace("<image>", "<!--<image>--><image >", 1),
        GOOD.replace("<signature>", "<signature><![CDATA[" + IMAGE + "]]>"),
        GOOD.replace("</image>", "</image><extra>" + IMAGE + "</extra>"),
    ],
    ids=["two", "in a comment", "comment and spaced tag", "in CDATA", "nested"],
)
def test_a_second_image_element_is_refused(text):
    refused(text, "more than one <image>")


def test_a_second_machine_configuration_is_refused():
    refused(GOOD.replace("</machine_configuration>", "</machine_configuration>" + MACHINE), "more than one")


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace(MACHINE, "<!--" + MACHINE + "-->"),
        GOOD.replace("<signature>", "<signature><![CDATA[</image>]]>"),
        GOOD.replace(IMAGE, "<image/>"),
    ],
    ids=["only in a comment", "stray end tag in CDATA", "self-closed"],
)
def test_a_signed_element_the_parser_would_not_see_as_written_is_refused(text):
    refused(text, "hidden, empty or ambiguous|more than one")


def test_a_manifest_without_an_image_is_refused():
    refused(GOOD.replace(IMAGE, ""), "no <image>")


def test_an_image_element_away_from_the_root_is_refused():
    refused(GOOD.replace(IMAGE, "<wrapper>" + IMAGE + "</wrapper>"), "directly in <manifest>")


def test_an_image_element_written_twice_inside_is_refused():
    doubled = GOOD.replace("<size>26214400</size>", "<size>26214400</size><size>1</size>")
    refused(doubled, "more than one <size>")


# ---------------------------------------------------------------- digests, sizes, ciphers


@pytest.mark.parametrize(
    "digest", [IMAGE_DIGEST[:-1], IMAGE_DIGEST + "0", "g" * 40, "", IMAGE_DIGEST[:20] + " " + IMAGE_DIGEST[21:]]
)
def test_an_image_digest_that_is_not_40_hex_digits_is_refused(digest):
    refused(GOOD.replace(IMAGE_DIGEST, digest), "image digest is not 40 hexadecimal digits")


def test_a_digest_algorithm_other_than_sha1_is_refused():
    text = GOOD.replace(f'<digest algorithm="SHA1">{IMAGE_DIGEST}', f'<digest algorithm="MD5">{IMAGE_DIGEST}')
    refused(text, "only SHA1")


def test_a_part_digest_that_is_not_40_hex_digits_is_refused():
    refused(GOOD.replace(PART_DIGESTS[1], "xyz"), "part 1's digest is not 40 hexadecimal digits")


def test_a_missing_image_digest_is_refused():
    refused(GOOD.replace(f'<digest algorithm="SHA1">{IMAGE_DIGEST}</digest>', ""), "no <image><digest>")


@pytest.mark.parametrize("size", ["-1", "abc", "", "1e9", "+5", "0x10", "1" * 30, "&#1633;&#1634;"])
def test_a_size_that_is_not_a_plain_whole_number_is_refused(size):
    refused(GOOD.replace("<size>26214400</size>", f"<size>{size}</size>"), r"<image><size> is not")


def test_a_cipher_other_than_aes_128_cbc_is_refused():
    refused(GOOD.replace('<ec2_encrypted_key algorithm="AES-128-CBC">', '<ec2_encrypted_key algorithm="DES">'), "AES")


@pytest.mark.parametrize("key", ["", "xyz", "abc"])
def test_an_ec2_key_that_is_missing_or_not_hex_is_refused(key):
    text = GOOD.replace(GOOD[GOOD.index("<ec2_encrypted_key") : GOOD.index("</ec2_encrypted_key>")], "")
    text = text.replace("</ec2_encrypted_key>", f'<ec2_encrypted_key algorithm="AES-128-CBC">{key}</ec2_encrypted_key>')
    refused(text, "ec2_encrypted_key")


def test_a_signature_that_is_neither_hex_nor_unsigned_is_refused():
    refused(GOOD.replace("<signature>UNSIGNED", "<signature>forged!"), "signature")


# ---------------------------------------------------------------- parts


@pytest.mark.parametrize(
    "count, match",
    [
        ("3", "says it has 3 parts but lists 2"),
        ("1", "says it has 1 parts but lists 2"),
        ("0", "between 1 and 10000"),
        ("10001", "between 1 and 10000"),
        ("99999999999999999999", "between 1 and 10000"),
        ("-2", "not a whole number"),
        ("two", "not a whole number"),
    ],
)
def test_a_part_count_that_does_not_add_up_is_refused(count, match):
    refused(GOOD.replace('<parts count="2">', f'<parts count="{count}">'), match)


def test_a_missing_part_count_is_refused():
    refused(GOOD.replace('<parts count="2">', "<parts>"), "part count")


def test_a_missing_parts_element_is_refused():
    start, end = GOOD.index("<parts"), GOOD.index("</parts>") + len("</parts>")
    refused(GOOD[:start] + GOOD[end:], "no <image><parts>")


@pytest.mark.parametrize(
    "first, second, match",
    [
        ("0", "0", "part 0 twice"),
        ("1", "1", "part 1 twice"),
        ("0", "2", "index '2' outside 0..1"),
        ("-1", "1", "index '-1' outside"),
        ("zero", "1", "index 'zero' outside"),
        ("", "1", "index '' outside"),
    ],
)
def test_part_indices_must_be_0_to_count_minus_1_without_duplicates(first, second, match):
    text = GOOD.replace('<part index="0">', f'<part index="{first}">').replace(
        '<part index="1">', f'<part index="{second}">'
    )
    refused(text, match)


@pytest.mark.parametrize(
    "filename",
    [
        "../x",
        "../../other-bucket/secret",
        "/etc/passwd",
        "sub/part.00",
        "..\\..\\evil",
        "a\\b",
        ".",
        "..",
        "",
        "part&#127;00",
        "part\t00",
        "part&#10;00",
        "p" * 256,
    ],
)
def test_a_part_file_name_that_is_not_a_plain_name_is_refused(filename):
    refused(GOOD.replace("myimage.img.part.01", filename), "part 1's file name|no file name for part 1")


@pytest.mark.parametrize("reference", ["&#0;", "&#1;"])
def test_a_character_xml_forbids_in_a_part_file_name_is_refused(reference):
    refused(GOOD.replace("myimage.img.part.01", f"part{reference}01"), "not well-formed")
