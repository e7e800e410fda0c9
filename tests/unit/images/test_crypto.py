"""Key wrapping, signatures and the AES stream (docs/bundle-format.md §2.4, §3, §5)."""

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding

from images.crypto import Decryptor, Encryptor, sign, unwrap_secret, wrap_secret
from images.errors import DecryptError


def test_a_wrapped_secret_unwraps_with_the_matching_key(cloud):
    secret = os.urandom(16)
    wrapped = wrap_secret(cloud.certificate, secret)
    assert len(wrapped) == 512 and wrapped == wrapped.lower()  # 2048-bit RSA, lowercase hex
    assert unwrap_secret(cloud.key, wrapped) == secret


def test_what_is_wrapped_is_the_secrets_hex_text(cloud):
    """Producers encrypt the 32 hex characters, not the 16 raw bytes (§3)."""
    secret = os.urandom(16)
    plaintext = cloud.key.decrypt(bytes.fromhex(wrap_secret(cloud.certificate, secret)), rsa_padding.PKCS1v15())
    assert plaintext == secret.hex().encode("ascii")


def test_wrapping_is_randomised(cloud):
    secret = os.urandom(16)
    assert wrap_secret(cloud.certificate, secret) != wrap_secret(cloud.certificate, secret)


def test_uppercase_hex_and_surrounding_whitespace_are_accepted(cloud):
    secret = os.urandom(16)
    wrapped = "\n  " + wrap_secret(cloud.certificate, secret).upper() + "  \n"
    assert unwrap_secret(cloud.key, wrapped) == secret


def test_a_secret_wrapped_for_another_certificate_is_a_decrypt_error(cloud, user):
    wrapped = wrap_secret(user.certificate, os.urandom(16))
    with pytest.raises(DecryptError, match="cannot be decrypted with this private key"):
        unwrap_secret(cloud.key, wrapped)


def test_a_plaintext_that_is_not_32_hex_digits_is_a_decrypt_error(cloud):
    """Implicit rejection makes wrong keys yield random bytes: the shape check is what catches them."""
    for plaintext in (b"x" * 32, b"ab" * 15, b"ab" * 17, os.urandom(16)):
        wrapped = cloud.certificate.public_key().encrypt(plaintext, rsa_padding.PKCS1v15()).hex()
        with pytest.raises(DecryptError):
            unwrap_secret(cloud.key, wrapped)


@pytest.mark.parametrize("text", ["", "zz", "abc", "not hex at all"])
def test_a_wrapped_secret_that_is_not_hex_is_a_decrypt_error(cloud, text):
    with pytest.raises(DecryptError):
        unwrap_secret(cloud.key, text)


def test_signatures_are_sha1_with_rsa_in_hex(user):
    signature = sign(user.key, b"signed text")
    public_key = user.certificate.public_key()
    public_key.verify(bytes.fromhex(signature), b"signed text", rsa_padding.PKCS1v15(), hashes.SHA1())


@pytest.mark.parametrize("chunk", [1, 15, 16, 17, 4096])
def test_the_aes_stream_round_trips_in_any_chunking(chunk):
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(10000)
    encryptor = Encryptor(key, iv)
    ciphertext = b"".join(encryptor.update(data[i : i + chunk]) for i in range(0, len(data), chunk))
    ciphertext += encryptor.finalize()
    assert len(ciphertext) == 10000 + 16 - 10000 % 16  # PKCS#7 always pads
    decryptor = Decryptor(key, iv)
    plain = b"".join(decryptor.update(ciphertext[i : i + chunk]) for i in range(0, len(ciphertext), chunk))
    assert plain + decryptor.finalize() == data


def test_a_block_aligned_plaintext_gets_a_whole_block_of_padding():
    encryptor = Encryptor(os.urandom(16), os.urandom(16))
    assert len(encryptor.update(bytes(32)) + encryptor.finalize()) == 48


def _encrypted(data, key, iv):
    encryptor = Encryptor(key, iv)
    return encryptor.update(data) + encryptor.finalize()


def test_ciphertext_cut_mid_block_is_a_decrypt_error():
    key, iv = os.urandom(16), os.urandom(16)
    decryptor = Decryptor(key, iv)
    decryptor.update(_encrypted(os.urandom(100), key, iv)[:-5])
    with pytest.raises(DecryptError, match="not a whole number of AES blocks"):
        decryptor.finalize()


def test_a_wrong_key_is_a_decrypt_error_at_the_padding():
    iv = os.urandom(16)
    ciphertext = _encrypted(b"some image data" * 10, os.urandom(16), iv)
    # A wrong key yields random last bytes: valid padding by chance is about 1 in 256.
    failures = 0
    for _ in range(20):
        decryptor = Decryptor(os.urandom(16), iv)
        decryptor.update(ciphertext)
        try:
            decryptor.finalize()
        except DecryptError as e:
            assert "padding" in str(e)
            failures += 1
    assert failures >= 15


def test_an_empty_ciphertext_is_a_decrypt_error():
    with pytest.raises(DecryptError):
        Decryptor(os.urandom(16), os.urandom(16)).finalize()
