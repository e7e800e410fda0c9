"""The cloud's key pair: bundles are encrypted for its certificate.

Users get the certificate (``objectstore-manage cloud-cert``, or
``GET /_images/cloud-cert.pem``) and bundle with it; only the registry,
holding the private key, can unwrap a bundle's AES key. Both live in the
data folder; the private key is written 0600 and never leaves it.
"""

import os

from images import crypto

KEY_FILE = "cloud-key.pem"
CERT_FILE = "cloud-cert.pem"
COMMON_NAME = "objectstore cloud"


class CloudKey:
    def __init__(self, data_dir):
        self.key_path = os.path.join(data_dir, KEY_FILE)
        self.cert_path = os.path.join(data_dir, CERT_FILE)

    def ensure(self):
        """Create the key pair unless there is one; True if this call created it.

        Never replaces a key: bundles already made for its certificate would
        become undecryptable. The pair is published with link(), which fails
        if another process (the server, objectstore-manage) got there first.
        """
        if os.path.exists(self.key_path):
            if not os.path.exists(self.cert_path):
                raise CloudKeyError(
                    f"{self.key_path} has no certificate beside it ({CERT_FILE}); restore it rather than "
                    "make a new key, which would strand every bundle made for the old one"
                )
            return False
        key_pem, cert_pem = crypto.new_key_and_certificate(COMMON_NAME)
        try:
            _write_new(self.key_path, key_pem, 0o600, replace=False)
        except FileExistsError:
            # Another process made the key meanwhile: its certificate is the one to keep.
            return False
        _write_new(self.cert_path, cert_pem, 0o644, replace=True)
        return True

    def certificate_pem(self):
        with open(self.cert_path, "rb") as f:
            return f.read()

    def private_key(self):
        with open(self.key_path, "rb") as f:
            return crypto.load_private_key(f.read())


class CloudKeyError(Exception):
    """The cloud key pair is damaged."""


def _write_new(path, data, mode, replace):
    """Write *path* whole or not at all: a temp file, fsynced, then renamed (or linked, if not *replace*)."""
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
