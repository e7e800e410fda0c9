"""The backends the storage contract suite runs against: one fixture each.

A second backend plugs in by adding one entry to BACKENDS: a function that
makes a started ObjectStore over a location (a folder for the disk store; a
database and a pool for a distributed one) and opens the same data again
after ``close``. Every test in this package then runs against it.
"""

import inspect

import pytest
from twisted.internet import defer

from tests.helpers import started_store


def disk_store(location):
    return started_store(location)


def disk_store_without_inline_objects(location):
    """The disk store with every object in a blob file: the other half of its write paths."""
    return started_store(location, inline_limit=0)


BACKENDS = {
    "disk": disk_store,
    "disk-blobs-only": disk_store_without_inline_objects,
}


class Backend:
    """A backend under test: its store, and how to reopen its data as after a restart."""

    def __init__(self, make, location):
        self._make = make
        self.location = location
        self.store = make(location)

    def reopen(self):
        self.store.close()
        self.store = self._make(self.location)
        return self.store

    def close(self):
        self.store.close()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path):
    opened = Backend(BACKENDS[request.param], tmp_path / "data")
    yield opened
    opened.close()


@pytest.fixture
def store(backend):
    return backend.store


async def settle(value):
    """*value*, awaited if it is awaitable: reads may be plain calls or Deferreds (see storage/contract.py)."""
    if isinstance(value, defer.Deferred) or inspect.isawaitable(value):
        return await value
    return value
