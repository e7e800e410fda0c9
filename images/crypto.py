"""Keys, certificates, key wrapping, signatures and the AES stream of a bundle (docs/bundle-format.md §2.4, §3, §5)."""

import datetime
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from images.errors import DecryptError

if TYPE_CHECKING:
    from images.manifest import Manifest

# What a bundle's key is wrapped for, or its signature checked with: a certificate or its bare public key.
PublicKeyLike = Union[x509.Certificate, rsa.RSAPublicKey]

AES_BLOCK_BITS = 128
_HEX_SECRET = re.compile(rb"[0-9a-fA-F]{32}")


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8, unencrypted)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("bundles need an RSA private key")
    return key


def load_certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def new_key_and_certificate(common_name: str, days: int = 3650, key_size: int = 2048) -> tuple[bytes, bytes]:
    """A fresh RSA key and a self-signed certificate for it, both as PEM bytes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A day of slack so a client whose clock runs a little behind accepts it.
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        # "BEGIN RSA PRIVATE KEY": the form euca2ools-era tools and openssl rsautl expect.
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


def new_secret() -> bytes:
    """16 random bytes: a bundle's AES key or IV."""
    return secrets.token_bytes(16)


def wrap_secret(certificate: PublicKeyLike, secret16: bytes) -> str:
    """Hex of the RSA (PKCS#1 v1.5) encryption of the secret's 32-character hex text.

    Producers encrypt the hex *text*, not the raw bytes (§3); registrars expect it.
    """
    if len(secret16) != 16:
        raise ValueError("an AES-128 key or IV is 16 bytes")
    text = secret16.hex().encode("ascii")
    return _public_key(certificate).encrypt(text, rsa_padding.PKCS1v15()).hex()


def unwrap_secret(private_key: rsa.RSAPrivateKey, hex_text: str) -> bytes:
    """The 16-byte key or IV wrapped by ``wrap_secret``; anything else is ``DecryptError``."""
    try:
        ciphertext = bytes.fromhex(hex_text.strip())
    except (ValueError, AttributeError):
        raise DecryptError("the bundle's encrypted key is not hexadecimal") from None
    try:
        plaintext = private_key.decrypt(ciphertext, rsa_padding.PKCS1v15())
    except ValueError:
        plaintext = b""
    # OpenSSL's implicit rejection turns a wrong key into random bytes instead
    # of an error, so the shape of the plaintext is what actually tells.
    if not _HEX_SECRET.fullmatch(plaintext):
        raise DecryptError(
            "the bundle's key cannot be decrypted with this private key:"
            " the bundle was made for another certificate, or its manifest is corrupt"
        )
    return bytes.fromhex(plaintext.decode("ascii"))


def sign(private_key: rsa.RSAPrivateKey, data: bytes) -> str:
    """Hex SHA1withRSA signature, as every bundle producer makes it (§5)."""
    return private_key.sign(data, rsa_padding.PKCS1v15(), hashes.SHA1()).hex()


def verify_signature(manifest: "Manifest", certificates: Union[PublicKeyLike, Iterable[PublicKeyLike]]) -> bool:
    """True when the manifest's signed text verifies under one of the certificates.

    False for an unsigned manifest, a signature from anyone else, or a
    tampered manifest. ``certificates`` may also hold bare public keys.
    """
    if manifest.signature is None:
        return False
    if isinstance(certificates, (x509.Certificate, rsa.RSAPublicKey)):
        certificates = [certificates]
    signature = bytes.fromhex(manifest.signature)
    for certificate in certificates:
        key = _public_key(certificate)
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, manifest.signed_text, rsa_padding.PKCS1v15(), hashes.SHA1())
        except InvalidSignature:
            continue
        return True
    return False


def _public_key(certificate_or_key):
    if isinstance(certificate_or_key, x509.Certificate):
        return certificate_or_key.public_key()
    return certificate_or_key


class Decryptor:
    """AES-128-CBC decryption with PKCS#7 unpadding, a chunk at a time."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpadder = padding.PKCS7(AES_BLOCK_BITS).unpadder()

    def update(self, data: bytes) -> bytes:
        return self._unpadder.update(self._cipher.update(data))

    def finalize(self) -> bytes:
        try:
            tail = self._cipher.finalize()
        except ValueError:
            raise DecryptError(
                "the encrypted image is not a whole number of AES blocks: a part is truncated or corrupt"
            ) from None
        try:
            return self._unpadder.update(tail) + self._unpadder.finalize()
        except ValueError:
            raise DecryptError(
                "the encrypted image does not end in valid padding: wrong key, or a truncated or corrupt part"
            ) from None


class Encryptor:
    """AES-128-CBC encryption with PKCS#7 padding, a chunk at a time."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._padder = padding.PKCS7(AES_BLOCK_BITS).padder()

    def update(self, data: bytes) -> bytes:
        return self._cipher.update(self._padder.update(data))

    def finalize(self) -> bytes:

        return self._cipher.update(self._padder.finalize()) + self._cipher.finalize()
