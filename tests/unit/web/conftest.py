"""Fixtures of the in-memory HTTP tests: one store per module, a fresh bucket per test."""

import hashlib

import pytest_twisted

from tests.memory import memory_s3


@pytest_twisted.async_yield_fixture(scope="module")
async def s3(tmp_path_factory):
    """An S3Site over its own store (default settings: path-style only), answered in memory."""
    async with memory_s3(tmp_path_factory.mktemp("memory-s3")) as server:
        yield server


@pytest_twisted.async_fixture
async def bucket(s3, request):
    """A new bucket, owned by the admin, named after the test."""
    name = "mem-" + hashlib.md5(request.node.nodeid.encode()).hexdigest()[:16]
    await s3.put_bucket(name)
    return name
