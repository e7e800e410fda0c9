"""Keys made once per session (RSA key generation is the slow part), and a folder per test."""

import os
from dataclasses import dataclass

import pytest

from images.crypto import load_certificate, load_private_key, new_key_and_certificate
from tests.unit.images.helpers import Workspace


@dataclass(frozen=True)
class KeyPair:
    key: object
    certificate: object
    key_pem: bytes
    certificate_pem: bytes


def _key_pair(name):
    key_pem, certificate_pem = new_key_and_certificate(name)
    return KeyPair(load_private_key(key_pem), load_certificate(certificate_pem), key_pem, certificate_pem)


@pytest.fixture(scope="session")
def cloud():
    return _key_pair("cloud")


@pytest.fixture(scope="session")
def user():
    return _key_pair("user")


@pytest.fixture(scope="session")
def stranger():
    """Another user, whose certificate must not vouch for the user's manifests."""
    return _key_pair("stranger")


@pytest.fixture
def options(cloud, user):
    """What every bundle call needs: the cloud's certificate and the user's identity."""
    return {
        "user_id": "1234-5678-9012",
        "cloud_certificate": cloud.certificate,
        "user_certificate": user.certificate,
        "user_private_key": user.key,
    }


@pytest.fixture
def workspace(tmp_path):
    return Workspace(tmp_path)


@pytest.fixture
def image_bytes():
    """An image that compresses a little, like a real disk: random blocks and zeros."""
    return (os.urandom(4096) + bytes(12288)) * 20 + b"tail"
