"""Helpers the functional tests share: making buckets, waiting with a bound, boto3's errors."""

import time

from botocore.exceptions import ClientError
from twisted.internet import reactor, task

from tests.s3http import call


async def make_bucket(server, name, headers=None, keys=None):
    """Create bucket *name* over HTTP (as the admin, or as *keys*); fail the test unless it is made."""
    options = {"headers": headers} if headers else {}
    if keys:
        options["keys"] = keys
    response, content = await call(server, "PUT", f"/{name}", **options)
    assert response.code == 200, content
    return response


async def eventually(predicate, timeout=10.0, interval=0.02, exceptions=()):
    """Poll *predicate* (which may raise one of *exceptions* meanwhile) until it holds; fail after *timeout* s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except exceptions:
            pass
        assert time.monotonic() < deadline, "condition not reached in time"
        await task.deferLater(reactor, interval, lambda: None)


def client_error_response(f, *args, **kwargs):
    """The error response of a blocking boto3 call that must fail (run it in a thread)."""
    try:
        f(*args, **kwargs)
    except ClientError as e:
        return e.response
    raise AssertionError("the call succeeded")


def client_error(f, *args, **kwargs):
    """(S3 error code, HTTP status) of a blocking boto3 call that must fail."""
    response = client_error_response(f, *args, **kwargs)
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]
