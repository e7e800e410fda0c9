"""ACLs over the wire: canned ACLs, grant headers and AccessControlPolicy documents; owners in listings."""

import base64
import hashlib

import pytest
import pytest_twisted
from lxml import etree

from objectstore.auth import acl as acls
from objectstore.xmlio import S3_NS, XSI_NS
from tests.conftest import ADMIN_KEYS
from tests.helpers import client_error, refused, unchanged
from tests.s3http import call, error_code, header

ALL_USERS = acls.ALL_USERS
AUTHENTICATED_USERS = acls.AUTHENTICATED_USERS


def user_grant(user_id, permission):
    return {"Grantee": {"Type": "CanonicalUser", "ID": user_id}, "Permission": permission}


def group_grant(uri, permission):
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


def grants(response):
    """Comparable grants of a boto3 Get*Acl answer: (ID or URI, permission), sorted."""
    return sorted((g["Grantee"].get("ID") or g["Grantee"]["URI"], g["Permission"]) for g in response["Grants"])


async def bucket(server, name, headers=None, keys=ADMIN_KEYS):
    response, content = await call(server, "PUT", f"/{name}", keys=keys, headers=headers)
    assert response.code == 200, content


async def obj(server, bucket_name, key, body=b"data", headers=None, keys=ADMIN_KEYS):
    response, content = await call(server, "PUT", f"/{bucket_name}/{key}", keys=keys, headers=headers, body=body)
    assert response.code == 200, content


def admin_id(server):
    return server.user_id("admin")


@pytest.fixture
def friend(server):
    """Another user: (keys, id)."""
    keys = server.create_user("friend")
    return keys, server.user_id("friend")


# -- GET ?acl ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_get_bucket_acl_is_the_document_aws_writes(server, bucket_name):
    await bucket(server, bucket_name, headers={"x-amz-acl": "public-read"})
    response, content = await call(server, "GET", f"/{bucket_name}?acl")
    assert response.code == 200
    assert header(response, "Content-Type") == "application/xml"
    owner = admin_id(server)
    expected = (
        f'<AccessControlPolicy xmlns="{S3_NS}">'
        f"<Owner><ID>{owner}</ID><DisplayName>admin</DisplayName></Owner>"
        "<AccessControlList>"
        f'<Grant><Grantee xmlns:xsi="{XSI_NS}" xsi:type="CanonicalUser">'
        f"<ID>{owner}</ID><DisplayName>admin</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>"
        f'<Grant><Grantee xmlns:xsi="{XSI_NS}" xsi:type="Group">'
        f"<URI>{ALL_USERS}</URI></Grantee><Permission>READ</Permission></Grant>"
        "</AccessControlList></AccessControlPolicy>"
    )
    assert content.split(b"?>", 1)[1].strip() == expected.encode()


@pytest_twisted.ensureDeferred
async def test_get_object_acl_names_the_object_owner(server, bucket_name):
    await bucket(server, bucket_name, headers={"x-amz-acl": "public-read-write"})
    keys = server.create_user("writer")
    await obj(server, bucket_name, "k", keys=keys)
    s3 = server.boto3()
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="k")
    writer = server.user_id("writer")
    assert response["Owner"] == {"ID": writer, "DisplayName": "writer"}
    assert grants(response) == [(writer, "FULL_CONTROL")]


# -- canned ACLs on CreateBucket, PutObject, CopyObject, Put*Acl --------------------------------

BUCKET_CANNED = {
    "private": [],
    "public-read": [(ALL_USERS, "READ")],
    "public-read-write": [(ALL_USERS, "READ"), (ALL_USERS, "WRITE")],
    "authenticated-read": [(AUTHENTICATED_USERS, "READ")],
    "aws-exec-read": [(acls.EXEC_READ_USER, "READ")],
    "bucket-owner-read": [],
    "bucket-owner-full-control": [],
}


def with_owner(server, extra):
    return sorted([(admin_id(server), "FULL_CONTROL"), *extra])


@pytest.mark.parametrize("canned", acls.CANNED)
@pytest_twisted.ensureDeferred
async def test_create_bucket_applies_a_canned_acl(server, bucket_name, canned):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name, ACL=canned)
    response = await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)
    assert grants(response) == with_owner(server, BUCKET_CANNED[canned])


@pytest.mark.parametrize("canned", acls.CANNED)
@pytest_twisted.ensureDeferred
async def test_put_bucket_acl_applies_a_canned_acl(server, bucket_name, canned):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name, ACL="public-read-write")
    await server.blocking(s3.put_bucket_acl, Bucket=bucket_name, ACL=canned)
    response = await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)
    assert grants(response) == with_owner(server, BUCKET_CANNED[canned])


def object_canned(server, canned, bucket_owner):
    """The grants *canned* gives an object the admin owns in a bucket *bucket_owner* owns."""
    extra = dict(BUCKET_CANNED)
    extra["bucket-owner-read"] = [(bucket_owner, "READ")]
    extra["bucket-owner-full-control"] = [(bucket_owner, "FULL_CONTROL")]
    return with_owner(server, extra[canned])


async def foreign_bucket(server, bucket_name):
    """A bucket another user owns, where the admin may write; the owner's id."""
    keys = server.create_user("bucketowner")
    owner = server.user_id("bucketowner")
    await bucket(server, bucket_name, headers={"x-amz-acl": "public-read-write"}, keys=keys)
    return owner


@pytest.mark.parametrize("canned", acls.CANNED)
@pytest_twisted.ensureDeferred
async def test_put_object_applies_a_canned_acl(server, bucket_name, canned):
    owner = await foreign_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"x", ACL=canned)
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="k")
    assert grants(response) == object_canned(server, canned, owner)


@pytest.mark.parametrize("canned", acls.CANNED)
@pytest_twisted.ensureDeferred
async def test_copy_object_applies_a_canned_acl(server, bucket_name, canned):
    owner = await foreign_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="src", Body=b"x", ACL="public-read")
    source = {"Bucket": bucket_name, "Key": "src"}
    await server.blocking(s3.copy_object, Bucket=bucket_name, Key="dst", CopySource=source, ACL=canned)
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="dst")
    assert grants(response) == object_canned(server, canned, owner)


@pytest.mark.parametrize("canned", acls.CANNED)
@pytest_twisted.ensureDeferred
async def test_put_object_acl_applies_a_canned_acl(server, bucket_name, canned):
    owner = await foreign_bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="k", Body=b"x", ACL="public-read-write")
    await server.blocking(s3.put_object_acl, Bucket=bucket_name, Key="k", ACL=canned)
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="k")
    assert grants(response) == object_canned(server, canned, owner)


@pytest_twisted.ensureDeferred
async def test_a_copy_without_acl_headers_is_private_whatever_the_source(server, bucket_name):
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="src", Body=b"x", ACL="public-read")
    await server.blocking(s3.copy_object, Bucket=bucket_name, Key="dst", CopySource=f"{bucket_name}/src")
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="dst")
    assert grants(response) == with_owner(server, [])


@pytest_twisted.ensureDeferred
async def test_an_unknown_canned_acl_is_refused_and_changes_nothing(server, bucket_name):
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "k")
    async with unchanged(server):
        for method, path in [
            ("PUT", f"/{bucket_name}-new"),
            ("PUT", f"/{bucket_name}/k2"),
            ("PUT", f"/{bucket_name}?acl"),
        ]:
            response, content = await call(server, method, path, headers={"x-amz-acl": "public"}, body=b"")
            assert (response.code, error_code(content)) == (400, "InvalidArgument"), path


# -- grant headers -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_grant_headers_on_create_bucket_give_their_grantees_access(server, bucket_name, friend):
    keys, friend_id = friend
    s3 = server.boto3()
    await server.blocking(
        s3.create_bucket,
        Bucket=bucket_name,
        GrantRead=f'uri="{ALL_USERS}", id="{friend_id}"',
        GrantWrite=f"id={friend_id}",
        GrantFullControl=f'id="{admin_id(server)}"',
    )
    response = await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)
    assert grants(response) == sorted(
        [(ALL_USERS, "READ"), (friend_id, "READ"), (friend_id, "WRITE"), (admin_id(server), "FULL_CONTROL")]
    )
    await obj(server, bucket_name, "from-friend", keys=keys)
    response, _ = await call(server, "GET", f"/{bucket_name}", keys=None)
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_grant_headers_without_the_owner_leave_the_owner_only_the_acl(server, bucket_name, friend):
    keys, friend_id = friend
    await bucket(server, bucket_name, headers={"x-amz-grant-full-control": f'id="{friend_id}"'}, keys=keys)
    # The creator (friend) granted FULL_CONTROL to itself only; the ACL is exactly that.
    s3 = server.boto3(keys)
    response = await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)
    assert grants(response) == [(friend_id, "FULL_CONTROL")]


@pytest_twisted.ensureDeferred
async def test_grant_headers_on_put_object_give_exactly_those_grants(server, bucket_name, friend):
    keys, friend_id = friend
    await bucket(server, bucket_name)
    s3 = server.boto3()
    await server.blocking(
        s3.put_object,
        Bucket=bucket_name,
        Key="k",
        Body=b"shared",
        GrantRead=f'id="{friend_id}"',
        GrantReadACP=f"uri={ALL_USERS}",
    )
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="k")
    assert grants(response) == sorted([(friend_id, "READ"), (ALL_USERS, "READ_ACP")])
    response, data = await call(server, "GET", f"/{bucket_name}/k", keys=keys)
    assert (response.code, data) == (200, b"shared")
    response, _ = await call(server, "GET", f"/{bucket_name}/k?acl", keys=None)
    assert response.code == 200
    response, content = await call(server, "GET", f"/{bucket_name}/k", keys=None)
    assert (response.code, error_code(content)) == (403, "AccessDenied")


@pytest_twisted.ensureDeferred
async def test_grant_headers_on_copy_object_give_exactly_those_grants(server, bucket_name, friend):
    _, friend_id = friend
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "src")
    s3 = server.boto3()
    await server.blocking(
        s3.copy_object,
        Bucket=bucket_name,
        Key="dst",
        CopySource=f"{bucket_name}/src",
        GrantFullControl=f'id="{friend_id}"',
    )
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="dst")
    assert grants(response) == [(friend_id, "FULL_CONTROL")]


@pytest_twisted.ensureDeferred
async def test_grant_headers_on_put_acl_replace_the_acl(server, bucket_name, friend):
    keys, friend_id = friend
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "k")
    s3 = server.boto3()
    await server.blocking(s3.put_bucket_acl, Bucket=bucket_name, GrantWrite=f'id="{friend_id}"')
    await server.blocking(s3.put_object_acl, Bucket=bucket_name, Key="k", GrantRead=f'uri="{AUTHENTICATED_USERS}"')
    assert grants(await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)) == [(friend_id, "WRITE")]
    assert grants(await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="k")) == [
        (AUTHENTICATED_USERS, "READ")
    ]
    await obj(server, bucket_name, "by-friend", keys=keys)
    response, data = await call(server, "GET", f"/{bucket_name}/k", keys=keys)
    assert (response.code, data) == (200, b"data")


def refusals(bucket_name):
    """(method, path) of every operation that takes ACL headers, on bucket_name holding "src"."""
    return [
        ("PUT", f"/{bucket_name}-new", {}),
        ("PUT", f"/{bucket_name}/new", {}),
        ("PUT", f"/{bucket_name}/copy", {"x-amz-copy-source": f"/{bucket_name}/src"}),
        ("PUT", f"/{bucket_name}?acl", {}),
        ("PUT", f"/{bucket_name}/src?acl", {}),
    ]


BAD_HEADERS = {
    "canned and grants": ({"x-amz-acl": "private", "x-amz-grant-read": f'uri="{ALL_USERS}"'}, "InvalidRequest"),
    "an email address": ({"x-amz-grant-read": 'emailAddress="someone@example.com"'}, "UnresolvableGrantByEmailAddress"),
    "an unknown id": ({"x-amz-grant-read": 'id="nobody"'}, "InvalidArgument"),
    "an unknown group": (
        {"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/Robots"'},
        "InvalidArgument",
    ),
    "an unparsable list": ({"x-amz-grant-full-control": "everyone"}, "InvalidArgument"),
    "an unknown kind": ({"x-amz-grant-full-control": 'name="admin"'}, "InvalidArgument"),
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
@pytest_twisted.ensureDeferred
async def test_bad_acl_headers_are_refused_everywhere_and_change_nothing(server, bucket_name, case):
    headers, code = BAD_HEADERS[case]
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "src")
    async with unchanged(server):
        for method, path, extra in refusals(bucket_name):
            body = b"" if "copy" in path or "acl" in path or path.endswith("-new") else b"body"
            response, content = await call(server, method, path, headers={**headers, **extra}, body=body)
            assert (response.code, error_code(content)) == (400, code), path


# -- AccessControlPolicy documents -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_put_bucket_acl_document_round_trips(server, bucket_name, friend):
    keys, friend_id = friend
    s3 = server.boto3()
    await server.blocking(s3.create_bucket, Bucket=bucket_name)
    owner = {"ID": admin_id(server), "DisplayName": "admin"}
    policy = {
        "Owner": owner,
        "Grants": [
            user_grant(admin_id(server), "FULL_CONTROL"),
            user_grant(friend_id, "READ"),
            user_grant(friend_id, "READ_ACP"),
            group_grant(AUTHENTICATED_USERS, "WRITE"),
            group_grant(acls.LOG_DELIVERY, "WRITE"),
        ],
    }
    await server.blocking(s3.put_bucket_acl, Bucket=bucket_name, AccessControlPolicy=policy)
    response = await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)
    assert response["Owner"] == owner
    assert grants(response) == sorted(
        [
            (admin_id(server), "FULL_CONTROL"),
            (friend_id, "READ"),
            (friend_id, "READ_ACP"),
            (AUTHENTICATED_USERS, "WRITE"),
            (acls.LOG_DELIVERY, "WRITE"),
        ]
    )
    names = {g["Grantee"].get("ID"): g["Grantee"].get("DisplayName") for g in response["Grants"]}
    assert names[friend_id] == "friend"
    friend_s3 = server.boto3(keys)
    listed = await server.blocking(friend_s3.list_objects_v2, Bucket=bucket_name)
    assert listed["KeyCount"] == 0
    assert grants(await server.blocking(friend_s3.get_bucket_acl, Bucket=bucket_name)) == grants(response)


@pytest_twisted.ensureDeferred
async def test_an_acl_read_back_can_be_written_back_unchanged(server, bucket_name):
    # s3cmd's setacl reads the ACL, edits it and writes the whole document back.
    await bucket(server, bucket_name, headers={"x-amz-acl": "aws-exec-read"})
    await obj(server, bucket_name, "k", headers={"x-amz-acl": "aws-exec-read"})
    for path in (f"/{bucket_name}?acl", f"/{bucket_name}/k?acl"):
        _, document = await call(server, "GET", path)
        async with unchanged(server):
            response, content = await call(server, "PUT", path, body=document)
            assert response.code == 200, content
        _, again = await call(server, "GET", path)
        assert again == document


@pytest_twisted.ensureDeferred
async def test_put_object_acl_document_gives_its_grants_and_keeps_the_object(server, bucket_name, friend):
    keys, friend_id = friend
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "k", body=b"payload")
    s3 = server.boto3()
    head = await server.blocking(s3.head_object, Bucket=bucket_name, Key="k")
    policy = {"Owner": {"ID": admin_id(server)}, "Grants": [user_grant(friend_id, "FULL_CONTROL")]}
    await server.blocking(s3.put_object_acl, Bucket=bucket_name, Key="k", AccessControlPolicy=policy)
    response = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="k")
    assert grants(response) == [(friend_id, "FULL_CONTROL")]
    again = await server.blocking(s3.head_object, Bucket=bucket_name, Key="k")
    assert (again["ETag"], again["LastModified"]) == (head["ETag"], head["LastModified"])
    # The friend now reads the object and may hand its ACL on; the owner still reads the ACL.
    response, data = await call(server, "GET", f"/{bucket_name}/k", keys=keys)
    assert (response.code, data) == (200, b"payload")
    friend_s3 = server.boto3(keys)
    await server.blocking(friend_s3.put_object_acl, Bucket=bucket_name, Key="k", ACL="public-read")
    response, data = await call(server, "GET", f"/{bucket_name}/k", keys=None)
    assert (response.code, data) == (200, b"payload")


def policy_xml(owner, *grantees, permission="READ"):
    listed = "".join(f"<Grant>{g}<Permission>{permission}</Permission></Grant>" for g in grantees)
    return (
        f'<AccessControlPolicy xmlns="{S3_NS}"><Owner><ID>{owner}</ID></Owner>'
        f"<AccessControlList>{listed}</AccessControlList></AccessControlPolicy>"
    ).encode()


def xsi_grantee(kind, inner):
    return f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="{kind}">{inner}</Grantee>'


BAD_DOCUMENTS = {
    "not xml": (lambda owner: b"<AccessControlPolicy><Owner>", 400, "MalformedACLError"),
    "no owner": (
        lambda owner: f'<AccessControlPolicy xmlns="{S3_NS}"><AccessControlList/></AccessControlPolicy>'.encode(),
        400,
        "MalformedACLError",
    ),
    "a bad permission": (
        lambda owner: policy_xml(owner, xsi_grantee("Group", f"<URI>{ALL_USERS}</URI>"), permission="ALL"),
        400,
        "MalformedACLError",
    ),
    "a grantee without xsi:type": (
        lambda owner: policy_xml(owner, f"<Grantee><URI>{ALL_USERS}</URI></Grantee>"),
        400,
        "MalformedACLError",
    ),
    "an unknown user": (
        lambda owner: policy_xml(owner, xsi_grantee("CanonicalUser", "<ID>_foo</ID>")),
        400,
        "InvalidArgument",
    ),
    "an email address": (
        lambda owner: policy_xml(owner, xsi_grantee("AmazonCustomerByEmail", "<EmailAddress>a@b.c</EmailAddress>")),
        400,
        "UnresolvableGrantByEmailAddress",
    ),
    "another owner": (lambda owner: policy_xml("someone-else"), 403, "AccessDenied"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
@pytest_twisted.ensureDeferred
async def test_bad_policy_documents_are_refused_and_change_nothing(server, bucket_name, case):
    make, status, code = BAD_DOCUMENTS[case]
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "k")
    async with unchanged(server):
        for path in (f"/{bucket_name}?acl", f"/{bucket_name}/k?acl"):
            response, content = await call(server, "PUT", path, body=make(admin_id(server)))
            assert (response.code, error_code(content)) == (status, code), path


@pytest_twisted.ensureDeferred
async def test_an_unknown_id_names_the_argument_as_aws_does(server, bucket_name):
    await bucket(server, bucket_name)
    body = policy_xml(admin_id(server), xsi_grantee("CanonicalUser", "<ID>_foo</ID>"))
    _, content = await call(server, "PUT", f"/{bucket_name}?acl", body=body)
    root = etree.fromstring(content)
    assert (root.findtext("Message"), root.findtext("ArgumentName"), root.findtext("ArgumentValue")) == (
        "Invalid id",
        "CanonicalUser/ID",
        "_foo",
    )


@pytest_twisted.ensureDeferred
async def test_put_acl_with_headers_and_a_document_is_unexpected_content(server, bucket_name):
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "k")
    async with unchanged(server):
        for path in (f"/{bucket_name}?acl", f"/{bucket_name}/k?acl"):
            body = policy_xml(admin_id(server))
            response, content = await call(server, "PUT", path, headers={"x-amz-acl": "public-read"}, body=body)
            assert (response.code, error_code(content)) == (400, "UnexpectedContent"), path


@pytest_twisted.ensureDeferred
async def test_put_acl_with_neither_headers_nor_a_document_is_missing_security_header(server, bucket_name):
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "k")
    async with unchanged(server):
        for path in (f"/{bucket_name}?acl", f"/{bucket_name}/k?acl"):
            response, content = await call(server, "PUT", path)
            assert (response.code, error_code(content)) == (400, "MissingSecurityHeader"), path


@pytest_twisted.ensureDeferred
async def test_put_acl_document_damaged_on_the_way_is_bad_digest(server, bucket_name):
    await bucket(server, bucket_name)
    body = policy_xml(admin_id(server), xsi_grantee("Group", f"<URI>{ALL_USERS}</URI>"))
    md5 = base64.b64encode(hashlib.md5(body + b" ").digest()).decode()
    request = call(server, "PUT", f"/{bucket_name}?acl", headers={"Content-MD5": md5}, body=body)
    await refused(server, "BadDigest", request, 400)


@pytest_twisted.ensureDeferred
async def test_put_object_acl_of_a_missing_key_is_no_such_key(server, bucket_name):
    await bucket(server, bucket_name)
    request = call(server, "PUT", f"/{bucket_name}/missing?acl", headers={"x-amz-acl": "public-read"})
    await refused(server, "NoSuchKey", request, 404)


# -- owners: who may do what ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_owner_who_revoked_every_grant_can_still_restore_them(server, bucket_name, friend):
    keys, friend_id = friend
    s3 = server.boto3(keys)
    await bucket(server, bucket_name, keys=keys)
    await obj(server, bucket_name, "k", keys=keys)
    policy = {"Owner": {"ID": friend_id}, "Grants": []}
    await server.blocking(s3.put_bucket_acl, Bucket=bucket_name, AccessControlPolicy=policy)
    # As in S3: no more listing or writing, but the ACL itself stays the owner's.
    assert await server.blocking(client_error, s3.list_objects, Bucket=bucket_name) == ("AccessDenied", 403)
    assert await server.blocking(client_error, s3.put_object, Bucket=bucket_name, Key="k2", Body=b"") == (
        "AccessDenied",
        403,
    )
    assert grants(await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)) == []
    await server.blocking(s3.put_bucket_acl, Bucket=bucket_name, ACL="private")
    listed = await server.blocking(s3.list_objects, Bucket=bucket_name)
    assert [o["Key"] for o in listed["Contents"]] == ["k"]


@pytest_twisted.ensureDeferred
async def test_a_bucket_owner_deletes_but_cannot_read_another_users_private_object(server, bucket_name, friend):
    keys, _ = friend
    owner_keys = server.create_user("owner")
    await bucket(server, bucket_name, headers={"x-amz-acl": "public-read-write"}, keys=owner_keys)
    await obj(server, bucket_name, "theirs", keys=keys)
    await obj(server, bucket_name, "shared", keys=keys, headers={"x-amz-acl": "bucket-owner-full-control"})
    response, content = await call(server, "GET", f"/{bucket_name}/theirs", keys=owner_keys)
    assert (response.code, error_code(content)) == (403, "AccessDenied")
    response, _ = await call(server, "GET", f"/{bucket_name}/shared", keys=owner_keys)
    assert response.code == 200
    response, _ = await call(server, "DELETE", f"/{bucket_name}/theirs", keys=owner_keys)
    assert response.code == 204
    response, content = await call(server, "GET", f"/{bucket_name}/theirs", keys=keys)
    assert (response.code, error_code(content)) == (404, "NoSuchKey")


@pytest_twisted.ensureDeferred
async def test_anonymous_reads_a_public_read_object_and_nothing_else(server, bucket_name):
    await bucket(server, bucket_name)
    await obj(server, bucket_name, "public", body=b"for everyone", headers={"x-amz-acl": "public-read"})
    await obj(server, bucket_name, "private", body=b"secret")
    response, data = await call(server, "GET", f"/{bucket_name}/public", keys=None)
    assert (response.code, data) == (200, b"for everyone")
    response, _ = await call(server, "HEAD", f"/{bucket_name}/public", keys=None)
    assert response.code == 200
    for path in (f"/{bucket_name}/private", f"/{bucket_name}/public?acl", f"/{bucket_name}"):
        response, content = await call(server, "GET", path, keys=None)
        assert (response.code, error_code(content)) == (403, "AccessDenied"), path


# -- owners in listings ---------------------------------------------------------------------------


def owners_in(content):
    root = etree.fromstring(content)
    ns = {"s3": S3_NS}
    return [
        (c.findtext("s3:Key", namespaces=ns), c.findtext("s3:Owner/s3:ID", namespaces=ns))
        for c in root.iterfind("s3:Contents", ns)
    ]


@pytest_twisted.ensureDeferred
async def test_listings_name_each_objects_owner_where_aws_does(server, bucket_name, friend):
    keys, friend_id = friend
    await bucket(server, bucket_name, headers={"x-amz-acl": "public-read-write"})
    await obj(server, bucket_name, "a")
    await obj(server, bucket_name, "b", keys=keys)
    expected = [("a", admin_id(server)), ("b", friend_id)]
    _, v1 = await call(server, "GET", f"/{bucket_name}")
    assert owners_in(v1) == expected
    _, v2 = await call(server, "GET", f"/{bucket_name}?list-type=2")
    assert owners_in(v2) == [("a", None), ("b", None)]
    _, v2_owners = await call(server, "GET", f"/{bucket_name}?list-type=2&fetch-owner=true")
    assert owners_in(v2_owners) == expected
    s3 = server.boto3(keys)
    listed = await server.blocking(s3.list_objects, Bucket=bucket_name)
    assert [o["Owner"] for o in listed["Contents"]] == [
        {"ID": admin_id(server), "DisplayName": "admin"},
        {"ID": friend_id, "DisplayName": "friend"},
    ]
    buckets = await server.blocking(s3.list_buckets)
    assert buckets["Owner"] == {"ID": friend_id, "DisplayName": "friend"}


# -- the grants as s3-tests' check_grants reads them ----------------------------------------------


def full_grants(response):
    """Every grant whole, as s3-tests' check_grants compares them: no field left out, none added."""
    return sorted((g["Permission"], sorted(g["Grantee"].items())) for g in response["Grants"])


def canonical(user_id, name, permission):
    return (permission, sorted({"Type": "CanonicalUser", "ID": user_id, "DisplayName": name}.items()))


def group(uri, permission):
    return (permission, sorted({"Type": "Group", "URI": uri}.items()))


S3_TESTS_BUCKET_CANNED = {
    "private": [],
    "public-read": [group(ALL_USERS, "READ")],
    "public-read-write": [group(ALL_USERS, "READ"), group(ALL_USERS, "WRITE")],
    "authenticated-read": [group(AUTHENTICATED_USERS, "READ")],
}


@pytest.mark.parametrize("canned", sorted(S3_TESTS_BUCKET_CANNED))
@pytest_twisted.ensureDeferred
async def test_canned_bucket_and_object_grants_read_back_as_s3_tests_expects(server, bucket_name, canned):
    # s3-tests' test_bucket_acl_canned*, test_object_acl_canned*: the owner's grant with ID and
    # DisplayName, the group's with its URI, and nothing else.
    keys = server.create_user("main")
    main = server.user_id("main")
    s3 = server.boto3(keys)
    await server.blocking(s3.create_bucket, Bucket=bucket_name, ACL=canned)
    await server.blocking(s3.put_object, Bucket=bucket_name, Key="foo", Body=b"bar", ACL=canned)
    expected = sorted([canonical(main, "main", "FULL_CONTROL"), *S3_TESTS_BUCKET_CANNED[canned]])
    bucket_acl = await server.blocking(s3.get_bucket_acl, Bucket=bucket_name)
    object_acl = await server.blocking(s3.get_object_acl, Bucket=bucket_name, Key="foo")
    assert bucket_acl["Owner"] == object_acl["Owner"] == {"ID": main, "DisplayName": "main"}
    assert full_grants(bucket_acl) == full_grants(object_acl) == expected


@pytest.mark.parametrize(
    "canned, permission", [("bucket-owner-read", "READ"), ("bucket-owner-full-control", "FULL_CONTROL")]
)
@pytest_twisted.ensureDeferred
async def test_bucket_owner_canned_object_grants_read_back_as_s3_tests_expects(server, bucket_name, canned, permission):
    # s3-tests' test_object_acl_canned_bucketownerread / _bucketownerfullcontrol.
    main_keys, alt_keys = server.create_user("main"), server.create_user("alt")
    main, alt = server.user_id("main"), server.user_id("alt")
    await server.blocking(server.boto3(main_keys).create_bucket, Bucket=bucket_name, ACL="public-read-write")
    s3_alt = server.boto3(alt_keys)
    await server.blocking(s3_alt.put_object, Bucket=bucket_name, Key="foo", Body=b"bar", ACL=canned)
    response = await server.blocking(s3_alt.get_object_acl, Bucket=bucket_name, Key="foo")
    assert response["Owner"] == {"ID": alt, "DisplayName": "alt"}
    assert full_grants(response) == sorted([canonical(alt, "alt", "FULL_CONTROL"), canonical(main, "main", permission)])
