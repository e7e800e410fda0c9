"""Fixtures the unit tests share."""

import pytest

from tests.helpers import started_store


@pytest.fixture
def store_options():
    """Store keywords for the ``store`` fixture beyond ``started_store``'s defaults (durable, inline objects).

    A module whose tests need another store overrides this fixture.
    """
    return {}


@pytest.fixture
def store(tmp_path, store_options):
    """A started Store over tmp_path/data, closed after the test."""
    store = started_store(tmp_path / "data", **store_options)
    yield store
    store.close()
