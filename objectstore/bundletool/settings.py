"""Where the tool finds the server and the caller's keys: its options first, then the environment.

The environment variables are the ones euca2ools, boto and the AWS tools
read, so that scripts written for them port over unchanged.
"""

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:3333"
EC2_PATH = "/services/Cloud"
DEFAULT_REGION = "us-east-1"

# (access key, secret key) variables, in the order they are looked for; a
# pair is taken whole, never a key from one and a secret from another.
KEY_VARIABLES = (
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),  # boto3, awscli
    ("AWS_ACCESS_KEY", "AWS_SECRET_KEY"),  # euca2ools 3
    ("EC2_ACCESS_KEY", "EC2_SECRET_KEY"),  # euca2ools 1.x, eucarc files
)
# Not OBJECTSTORE_ACCESS_KEY: that seeds the server's admin, and a shell that
# starts the server should not silently make every bundle command the admin's.
S3_URL_VARIABLES = ("S3_URL", "AWS_ENDPOINT_URL_S3", "OBJECTSTORE_URL", "AWS_ENDPOINT_URL")
EC2_URL_VARIABLES = ("EC2_URL", "AWS_ENDPOINT_URL_EC2")
# Variables that name the server itself: the EC2 API is at EC2_PATH on it.
SERVER_URL_VARIABLES = ("OBJECTSTORE_URL", "AWS_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "EC2_REGION")


class SettingsError(Exception):
    """A missing or malformed setting, said so that the user can fix it."""


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class Endpoints:
    s3_url: str  # without a trailing slash; a path prefix is kept (http://host/services/Walrus)
    ec2_url: str
    region: str


def endpoints(url=None, s3_url=None, ec2_url=None, region=None, environ=None):
    """The S3 and EC2 URLs and the signing region.

    ``--s3-url`` and ``--ec2-url`` name one API each; ``--url`` names the
    server (S3 at its root, EC2 at /services/Cloud). Options beat the
    environment, and the variables naming one API beat those naming the
    server. With an S3 URL alone, EC2 is looked for on the same host.
    """
    environ = os.environ if environ is None else environ
    s3 = s3_url or url or _first(environ, S3_URL_VARIABLES) or DEFAULT_URL
    if ec2_url:
        ec2 = ec2_url
    elif url:
        ec2 = _join(url, EC2_PATH)
    else:
        # Without an EC2 URL of its own, EC2 is on the server S3 is on.
        server = _first(environ, SERVER_URL_VARIABLES) or _origin(s3_url) or _origin(_first(environ, S3_URL_VARIABLES))
        ec2 = _first(environ, EC2_URL_VARIABLES) or _join(server or DEFAULT_URL, EC2_PATH)
    return Endpoints(
        s3_url=_checked_url(s3, "the S3 URL"),
        ec2_url=_checked_url(ec2, "the EC2 URL"),
        region=region or _first(environ, REGION_VARIABLES) or DEFAULT_REGION,
    )


def keys(access_key=None, secret_key=None, environ=None):
    """The access key pair from the options, or else from the first variable pair that is set."""
    environ = os.environ if environ is None else environ
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise SettingsError("give both --access-key and --secret-key, or neither")
        return Keys(access_key, secret_key)
    for key_name, secret_name in KEY_VARIABLES:
        if environ.get(key_name) and environ.get(secret_name):
            return Keys(environ[key_name], environ[secret_name])
    names = ", ".join(f"{key}/{secret}" for key, secret in KEY_VARIABLES)
    raise SettingsError(f"no access keys: give --access-key and --secret-key, or set one of {names}")


def file_setting(value, variable, what, environ=None):
    """A file named by an option or, failing that, by an environment variable (None if neither)."""
    environ = os.environ if environ is None else environ
    path = value or environ.get(variable)
    if path and not os.path.isfile(path):
        source = "" if value else f" (from ${variable})"
        raise SettingsError(f"{what} {path}{source} is not a file")
    return path or None


def _first(environ, names):
    for name in names:
        if environ.get(name):
            return environ[name]
    return None


def _origin(url):
    """``scheme://host:port`` of *url* (None for None)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _join(url, path):
    return url.rstrip("/") + path


def _checked_url(url, what):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{what} must be an http:// or https:// URL with a host, not {url!r}")
    if parts.query or parts.fragment:
        raise SettingsError(f"{what} must not have a query or fragment: {url!r}")
    return url.rstrip("/")
