"""Manifest signatures: made over the raw signed text, checked against the user's certificates (§5)."""

from images.crypto import verify_signature
from images.manifest import Part, build_manifest, parse_manifest

DIGEST = "0123456789abcdef0123456789abcdef01234567"


def manifest_bytes(private_key=None, **changes):
    fields = {
        "name": "disk.img",
        "user": "123456789012",
        "image_digest": DIGEST,
        "size": 1024,
        "bundled_size": 48,
        "parts": [Part(0, "disk.img.part.00", DIGEST)],
        "ec2_encrypted_key": "ab" * 256,
        "ec2_encrypted_iv": "cd" * 256,
        "block_device_mapping": [("ami", "sda1"), ("root", "/dev/sda1")],
    }
    fields.update(changes)
    return build_manifest(private_key=private_key, **fields)


def test_a_manifest_signed_by_the_user_verifies_with_their_certificate(user):
    assert verify_signature(parse_manifest(manifest_bytes(user.key)), [user.certificate])


def test_any_one_of_several_certificates_is_enough(user, stranger, cloud):
    manifest = parse_manifest(manifest_bytes(user.key))
    assert verify_signature(manifest, [stranger.certificate, cloud.certificate, user.certificate])
    assert verify_signature(manifest, user.certificate)  # a lone certificate is taken as a list of one
    assert verify_signature(manifest, [user.certificate.public_key()])


def test_another_users_certificate_does_not_verify(user, stranger):
    assert not verify_signature(parse_manifest(manifest_bytes(user.key)), [stranger.certificate])
    assert not verify_signature(parse_manifest(manifest_bytes(user.key)), [])


def test_a_tampered_image_element_does_not_verify(user):
    data = manifest_bytes(user.key).replace(b"<size>1024</size>", b"<size>1025</size>")
    assert not verify_signature(parse_manifest(data), [user.certificate])


def test_a_tampered_part_digest_does_not_verify(user):
    data = manifest_bytes(user.key).replace(b'<digest algorithm="SHA1">0123', b'<digest algorithm="SHA1">9123', 1)
    assert parse_manifest(data).image_digest.startswith("9123")
    assert not verify_signature(parse_manifest(data), [user.certificate])


def test_a_tampered_machine_configuration_does_not_verify(user):
    data = manifest_bytes(user.key).replace(b"<architecture>x86_64", b"<architecture>i386")
    assert not verify_signature(parse_manifest(data), [user.certificate])


def test_a_change_outside_the_signed_elements_still_verifies(user):
    """Only machine_configuration and image are signed: the bundler block is not."""
    data = manifest_bytes(user.key).replace(b"<release>0</release>", b"<release>7</release>")
    assert verify_signature(parse_manifest(data), [user.certificate])


def test_an_unsigned_manifest_never_verifies(user):
    data = manifest_bytes(None)
    assert b"<signature>UNSIGNED</signature>" in data
    manifest = parse_manifest(data)
    assert manifest.signature is None
    assert not verify_signature(manifest, [user.certificate])


def test_a_signature_in_uppercase_hex_verifies(user):
    data = manifest_bytes(user.key)
    start = data.index(b"<signature>") + len(b"<signature>")
    end = data.index(b"</signature>")
    data = data[:start] + data[start:end].upper() + data[end:]
    assert verify_signature(parse_manifest(data), [user.certificate])


def test_the_serialisation_is_euca2ools_3x(user):
    """An XML declaration, one newline, the whole manifest on one line, no trailing newline (§4.2)."""
    data = manifest_bytes(user.key)
    declaration, body = data.split(b"\n")
    assert declaration == b"<?xml version='1.0' encoding='ASCII'?>"
    assert body.startswith(b"<manifest><version>2007-10-10</version><bundler><name>")
    assert b"<machine_configuration><architecture>x86_64</architecture><block_device_mapping><mapping>" in body
    assert b"<virtual>ami</virtual><device>sda1</device></mapping>" in body
    assert b"<image><name>disk.img</name><user>123456789012</user><type>machine</type>" in body
    assert (
        f'<digest algorithm="SHA1">{DIGEST}</digest><size>1024</size><bundled_size>48</bundled_size>'.encode() in body
    )
    assert b'<ec2_encrypted_key algorithm="AES-128-CBC">abab' in body
    assert b'<user_encrypted_key algorithm="AES-128-CBC"/><ec2_encrypted_iv>cdcd' in body
    assert b'<parts count="1"><part index="0"><filename>disk.img.part.00</filename>' in body
    assert body.endswith(b"</signature></manifest>")


def test_non_ascii_text_is_written_as_character_references(user):
    data = manifest_bytes(user.key, name="imäge")
    assert b"<name>im&#228;ge</name>" in data
    manifest = parse_manifest(data)
    assert manifest.name == "imäge"
    assert verify_signature(manifest, [user.certificate])
