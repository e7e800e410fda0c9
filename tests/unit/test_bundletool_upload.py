"""objectstore-bundle's upload plumbing: bucket/folder names and parallel parts that stop on a failure."""

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from objectstore.bundletool.bundlefiles import split_bucket
from objectstore.bundletool.transport import ToolError
from objectstore.bundletool.upload import _in_parallel


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bundles", ("bundles", "")),
        ("bundles/", ("bundles", "")),
        ("/bundles/v1", ("bundles", "v1/")),
        ("bundles/v1/centos/", ("bundles", "v1/centos/")),
    ],
)
def test_a_bucket_may_carry_a_folder(text, expected):
    assert split_bucket(text) == expected


def test_an_empty_bucket_name_is_refused():
    with pytest.raises(ToolError, match="empty"):
        split_bucket("/")


@pytest_twisted.ensureDeferred
async def test_parts_run_at_most_jobs_at_once():
    running, most = [], []

    async def part():
        running.append(1)
        most.append(len(running))
        await task.deferLater(reactor, 0.01, lambda: None)
        running.pop()

    await _in_parallel([part] * 10, jobs=3)
    assert max(most) == 3


@pytest_twisted.ensureDeferred
async def test_the_first_failure_cancels_the_parts_under_way_starts_no_more_and_is_raised():
    started, cancelled = [], []

    def slow(name):
        async def call():
            started.append(name)
            try:
                await defer.Deferred()  # never fires on its own
            except defer.CancelledError:
                cancelled.append(name)
                raise

        return call

    async def failing():
        started.append("failing")
        await task.deferLater(reactor, 0.01, lambda: None)
        raise ToolError("part 3 is damaged")

    with pytest.raises(ToolError, match="part 3 is damaged"):
        await _in_parallel([slow("a"), slow("b"), failing, slow("c"), slow("d")], jobs=3)
    assert started == ["a", "b", "failing"]
    assert sorted(cancelled) == ["a", "b"]
