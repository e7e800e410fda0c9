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
        """Create the key pair unless there is one; True if it was created."""
        if os.path.exists(self.key_path) and os.path.exists(self.cert_path):
            return False
        key_pem, cert_pem = crypto.new_key_and_certificate(COMMON_NAME)
        _write_new(self.key_path, key_pem, 0o600)
        _write_new(self.cert_path, cert_pem, 0o644)
        return True

    def certificate_pem(self):
        with open(self.cert_path, "rb") as f:
            return f.read()

    def private_key(self):
        with open(self.key_path, "rb") as f:
            return crypto.load_private_key(f.read())


def _write_new(path, data, mode):
    """Write *path* whole or not at all (a temp file renamed into place)."""
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
