"""Helpers the tests share: a started store, making buckets, waiting with a bound, boto3's errors,
checking that a refused request changed nothing, and counting the index writes a store makes."""

import contextlib
import inspect
import time

from botocore.exceptions import ClientError
from twisted.internet import reactor, task

from objectstore.storage.store import Store
from tests.s3http import call, error_code


def started_store(location, durable=True, **options):
    """A started disk Store over the folder *location*, in the test's reactor (the caller closes it).

    *options* are Store's other keywords (``inline_limit``...).
    """
    store = Store(str(location), durable=durable, reactor=reactor, **options)
    store.start()
    return store


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


@contextlib.asynccontextmanager
async def unchanged(server, settle=False):
    """Fail unless the block leaves ``server.snapshot()`` as it found it: files on disk and every index table.

    With *settle*, wait for the store's after-commit tidying (``server.settled()``)
    before each snapshot. A block that raises is not checked: its error stands.
    """
    if settle:
        await server.settled()
    before = server.snapshot()
    yield
    if settle:
        await server.settled()
    assert server.snapshot() == before


async def refused(server, code, request, status=None, settle=False):
    """Make *request*, which must be refused with S3 error *code* (and HTTP *status*, if given) and change nothing.

    *request* is either a coroutine not yet awaited (it runs between the
    snapshots) that answers (response, content) as ``tests.s3http.call(...)``
    does; or a blocking client call of no arguments (boto3's, e.g. a lambda),
    run in a thread, that must raise ClientError.
    Returns the answer, (response, content) as ``call`` returns it, or the
    ClientError's response. *settle* as for ``unchanged``.
    """
    if inspect.iscoroutine(request):
        try:
            async with unchanged(server, settle):
                response, content = await request
                if status is not None:
                    assert response.code == status, content
                assert content.startswith(b"<") and error_code(content) == code, content
                return response, content
        finally:
            request.close()  # never awaited if the first snapshot failed: no warning on top
    assert callable(request), "request: a call(...) coroutine or a blocking function"
    async with unchanged(server, settle):
        error = await server.blocking(client_error_response, request)
        assert error["Error"]["Code"] == code, error
        if status is not None:
            assert error["ResponseMetadata"]["HTTPStatusCode"] == status, error
        return error


@contextlib.contextmanager
def traced_writes(store):
    """The index writes *store* makes in the block: a list holding, for each write, the SQL statements it ran.

    Work counted, not seconds: a statement per row of an ``executemany``, the
    store's own bookkeeping before the operation (dropping garbage rows) left out.
    """
    writes = []
    write = store.disk.write

    def traced_write(operation, *args, **kwargs):
        statements = []
        writes.append(statements)

        def traced(conn):
            conn.set_trace_callback(statements.append)
            try:
                return operation(conn)
            finally:
                conn.set_trace_callback(None)

        return write(traced, *args, **kwargs)

    store.disk.write = traced_write
    try:
        yield writes
    finally:
        del store.disk.write
