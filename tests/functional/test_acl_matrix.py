"""Who may do what: every caller against every canned ACL, operation by operation.

The expected answers are written out by hand from S3's rules, not computed
from the code under test: on a bucket, READ lists and WRITE writes and
deletes any object; on an object, READ reads it; READ_ACP / WRITE_ACP read
and replace an ACL, and the owner of a resource always holds both. A bucket's
owner reads someone else's object only through ``bucket-owner-*``. Admins
may do anything; AllUsers includes anonymous callers, AuthenticatedUsers
anyone with a valid key.

One server serves the whole file; each cell uses its own keys, and a write
that succeeds (an ACL rewritten) leaves the ACL as it was.
"""

import pytest
import pytest_twisted

from objectstore.auth.acl import CANNED
from tests.conftest import ADMIN_KEYS, live_server
from tests.helpers import refused
from tests.s3http import call, error_code

BUCKET_OWNER, OBJECT_OWNER, OTHER, ANONYMOUS, ADMIN = "bucket owner", "object owner", "other user", "anonymous", "admin"
EVERYONE = {BUCKET_OWNER, OTHER, ANONYMOUS, ADMIN}
OWNER_AND_ADMIN = {BUCKET_OWNER, ADMIN}

# canned ACL of a bucket -> operation -> callers allowed.
BUCKET_RULES = {
    "private": dict.fromkeys(["list", "write", "delete", "read acl", "write acl"], OWNER_AND_ADMIN),
    "public-read": {
        "list": EVERYONE,
        "write": OWNER_AND_ADMIN,
        "delete": OWNER_AND_ADMIN,
        "read acl": OWNER_AND_ADMIN,
        "write acl": OWNER_AND_ADMIN,
    },
    "public-read-write": {
        "list": EVERYONE,
        "write": EVERYONE,
        "delete": EVERYONE,
        "read acl": OWNER_AND_ADMIN,
        "write acl": OWNER_AND_ADMIN,
    },
    "authenticated-read": {
        "list": {BUCKET_OWNER, OTHER, ADMIN},
        "write": OWNER_AND_ADMIN,
        "delete": OWNER_AND_ADMIN,
        "read acl": OWNER_AND_ADMIN,
        "write acl": OWNER_AND_ADMIN,
    },
    # READ for the image registry only; no caller here is the registry.
    "aws-exec-read": dict.fromkeys(["list", "write", "delete", "read acl", "write acl"], OWNER_AND_ADMIN),
    # On a bucket these mean private.
    "bucket-owner-read": dict.fromkeys(["list", "write", "delete", "read acl", "write acl"], OWNER_AND_ADMIN),
    "bucket-owner-full-control": dict.fromkeys(["list", "write", "delete", "read acl", "write acl"], OWNER_AND_ADMIN),
}

# canned ACL of an object another user wrote into the bucket owner's bucket -> operation -> callers allowed.
WRITER_AND_ADMIN = {OBJECT_OWNER, ADMIN}
ALL_FIVE = {BUCKET_OWNER, OBJECT_OWNER, OTHER, ANONYMOUS, ADMIN}
OBJECT_RULES = {
    "private": {"read": WRITER_AND_ADMIN, "read acl": WRITER_AND_ADMIN, "write acl": WRITER_AND_ADMIN},
    "public-read": {"read": ALL_FIVE, "read acl": WRITER_AND_ADMIN, "write acl": WRITER_AND_ADMIN},
    "public-read-write": {"read": ALL_FIVE, "read acl": WRITER_AND_ADMIN, "write acl": WRITER_AND_ADMIN},
    "authenticated-read": {
        "read": ALL_FIVE - {ANONYMOUS},
        "read acl": WRITER_AND_ADMIN,
        "write acl": WRITER_AND_ADMIN,
    },
    "aws-exec-read": {"read": WRITER_AND_ADMIN, "read acl": WRITER_AND_ADMIN, "write acl": WRITER_AND_ADMIN},
    "bucket-owner-read": {
        "read": WRITER_AND_ADMIN | {BUCKET_OWNER},
        "read acl": WRITER_AND_ADMIN,
        "write acl": WRITER_AND_ADMIN,
    },
    "bucket-owner-full-control": dict.fromkeys(["read", "read acl", "write acl"], WRITER_AND_ADMIN | {BUCKET_OWNER}),
}

OBJECTS_BUCKET = "acl-matrix-objects"


def bucket_of(canned):
    return f"acl-matrix-{canned}"


class Matrix:
    """The server and the keys of each caller (None: anonymous)."""

    def __init__(self, server):
        self.server = server
        self.keys = {
            BUCKET_OWNER: server.create_user("bucketowner"),
            OBJECT_OWNER: server.create_user("objectowner"),
            OTHER: server.create_user("other"),
            ANONYMOUS: None,
            ADMIN: ADMIN_KEYS,
        }

    def acls(self):
        """The stored ACL of every bucket and object the cells act on."""
        store = self.server.store
        return {
            canned: (store.get_bucket(bucket_of(canned)).acl, store.get_object(OBJECTS_BUCKET, canned).acl)
            for canned in CANNED
        }

    async def call(self, caller, method, path, **kwargs):
        return await call(self.server, method, path, keys=self.keys[caller], **kwargs)

    async def must(self, caller, method, path, status=200, **kwargs):
        response, content = await self.call(caller, method, path, **kwargs)
        assert response.code == status, content


@pytest_twisted.async_yield_fixture(scope="module")
async def matrix(tmp_path_factory):
    async with live_server(tmp_path_factory.mktemp("acl-matrix")) as server:
        m = Matrix(server)
        for canned in CANNED:
            await m.must(BUCKET_OWNER, "PUT", f"/{bucket_of(canned)}", headers={"x-amz-acl": canned})
            await m.must(ADMIN, "PUT", f"/{bucket_of(canned)}/seed", body=b"seed")
        await m.must(BUCKET_OWNER, "PUT", f"/{OBJECTS_BUCKET}", headers={"x-amz-acl": "public-read-write"})
        for canned in CANNED:
            await m.must(
                OBJECT_OWNER, "PUT", f"/{OBJECTS_BUCKET}/{canned}", body=b"body", headers={"x-amz-acl": canned}
            )
        m.initial_acls = m.acls()
        yield m


# Each operation: (method, path, extra request arguments, status when allowed, whether it writes).
def bucket_operation(operation, canned, caller):
    bucket = bucket_of(canned)
    tag = caller.replace(" ", "-")
    return {
        "list": ("GET", f"/{bucket}", {}, 200, False),
        "write": ("PUT", f"/{bucket}/written-by-{tag}", {"body": b"new"}, 200, True),
        "delete": ("DELETE", f"/{bucket}/victim-of-{tag}", {}, 204, True),
        "read acl": ("GET", f"/{bucket}?acl", {}, 200, False),
        # The same canned ACL again: allowed or not, the ACL stays what the other cells expect.
        "write acl": ("PUT", f"/{bucket}?acl", {"headers": {"x-amz-acl": canned}}, 200, True),
    }[operation]


def object_operation(operation, canned):
    path = f"/{OBJECTS_BUCKET}/{canned}"
    return {
        "read": ("GET", path, {}, 200, False),
        "read acl": ("GET", path + "?acl", {}, 200, False),
        "write acl": ("PUT", path + "?acl", {"headers": {"x-amz-acl": canned}}, 200, True),
    }[operation]


async def check_cell(matrix, caller, allowed, method, path, arguments, status, writes):
    request = matrix.call(caller, method, path, **arguments)
    if not allowed and writes:  # a refused write changes nothing
        await refused(matrix.server, "AccessDenied", request, 403)
        return
    response, content = await request
    if allowed:
        assert response.code == status, content
    else:
        assert (response.code, error_code(content)) == (403, "AccessDenied")


BUCKET_CELLS = [
    (canned, caller, operation)
    for canned in CANNED
    for caller in (BUCKET_OWNER, OTHER, ANONYMOUS, ADMIN)
    for operation in BUCKET_RULES[canned]
]


@pytest.mark.parametrize(
    "canned, caller, operation", BUCKET_CELLS, ids=[f"{c}-{who}-{op}".replace(" ", "_") for c, who, op in BUCKET_CELLS]
)
@pytest_twisted.ensureDeferred
async def test_bucket_acl(matrix, canned, caller, operation):
    method, path, arguments, status, writes = bucket_operation(operation, canned, caller)
    if operation == "delete":
        await matrix.must(ADMIN, "PUT", path, body=b"to delete")
    allowed = caller in BUCKET_RULES[canned][operation]
    await check_cell(matrix, caller, allowed, method, path, arguments, status, writes)


OBJECT_CELLS = [
    (canned, caller, operation)
    for canned in CANNED
    for caller in (BUCKET_OWNER, OBJECT_OWNER, OTHER, ANONYMOUS, ADMIN)
    for operation in OBJECT_RULES[canned]
]


@pytest.mark.parametrize(
    "canned, caller, operation", OBJECT_CELLS, ids=[f"{c}-{who}-{op}".replace(" ", "_") for c, who, op in OBJECT_CELLS]
)
@pytest_twisted.ensureDeferred
async def test_object_acl(matrix, canned, caller, operation):
    method, path, arguments, status, writes = object_operation(operation, canned)
    allowed = caller in OBJECT_RULES[canned][operation]
    await check_cell(matrix, caller, allowed, method, path, arguments, status, writes)


@pytest_twisted.ensureDeferred
async def test_the_matrix_left_every_acl_as_it_was_set(matrix):
    # Runs last (file order): the cells that rewrote ACLs rewrote them to themselves.
    assert matrix.acls() == matrix.initial_acls
