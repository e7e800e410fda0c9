"""Reading the PEM files a user bundles with, with errors that name the file."""

from cryptography.hazmat.primitives import serialization

from images import crypto
from objectstore.bundletool.transport import ToolError


def read_private_key(path):
    try:
        return crypto.load_private_key(_read(path, "private key"))
    except (ValueError, TypeError) as e:
        raise ToolError(f"{path} is not an unencrypted PEM RSA private key ({e})") from None


def read_certificate(path):
    return certificate_from_pem(_read(path, "certificate"), path)


def certificate_from_pem(pem, source):
    try:
        return crypto.load_certificate(pem)
    except ValueError as e:
        raise ToolError(f"{source} is not a PEM X.509 certificate ({e})") from None


def check_pair(certificate, private_key, certificate_path, key_path):
    """The certificate must be the key's: else the signature and the user's copy of the key are useless."""
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if certificate.public_key().public_bytes(encoding, public) != private_key.public_key().public_bytes(
        encoding, public
    ):
        raise ToolError(f"the certificate {certificate_path} is not the one of the private key {key_path}")


def _read(path, what):
    try:
        with open(path, "rb") as f:
            return f.read(1024 * 1024)
    except OSError as e:
        raise ToolError(f"cannot read the {what} {path}: {e.strerror}") from None
