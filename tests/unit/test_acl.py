"""ACLs as data: canned ACLs, access decisions, grant headers and AccessControlPolicy documents."""

import pytest
import pytest_twisted
from twisted.internet import reactor

from objectstore.auth import acl as acls
from objectstore.auth.credentials import ANONYMOUS, Caller, Credentials, User
from objectstore.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    NoSuchKey,
    UnresolvableGrantByEmailAddress,
)
from objectstore.index.database import Index
from objectstore.web.acl_input import acl_from_document, acl_from_headers, parse_grant_header
from objectstore.xmlio import S3_NS, XSI_NS

OWNER = "owner-id"
BUCKET_OWNER = "bucket-owner-id"


def caller(user_id, admin=False):
    return Caller(User(user_id, user_id, user_id, admin))


def grants_of(acl):
    """The grants as (grantee, permission) pairs, order kept."""
    return [(g.get("id") or g.get("uri"), g["permission"]) for g in acl["grants"]]


# -- canned ACLs ----------------------------------------------------------------------------------

CANNED_GRANTS = {
    "private": [(OWNER, "FULL_CONTROL")],
    "public-read": [(OWNER, "FULL_CONTROL"), (acls.ALL_USERS, "READ")],
    "public-read-write": [(OWNER, "FULL_CONTROL"), (acls.ALL_USERS, "READ"), (acls.ALL_USERS, "WRITE")],
    "authenticated-read": [(OWNER, "FULL_CONTROL"), (acls.AUTHENTICATED_USERS, "READ")],
    "aws-exec-read": [(OWNER, "FULL_CONTROL"), (acls.EXEC_READ_USER, "READ")],
    "bucket-owner-read": [(OWNER, "FULL_CONTROL"), (BUCKET_OWNER, "READ")],
    "bucket-owner-full-control": [(OWNER, "FULL_CONTROL"), (BUCKET_OWNER, "FULL_CONTROL")],
}


@pytest.mark.parametrize("name", acls.CANNED)
def test_a_canned_acl_on_an_object_grants_what_s3_documents(name):
    acl = acls.canned(name, OWNER, bucket_owner=BUCKET_OWNER)
    assert acl["owner"] == OWNER
    assert grants_of(acl) == CANNED_GRANTS[name]


@pytest.mark.parametrize("name", ["bucket-owner-read", "bucket-owner-full-control"])
def test_bucket_owner_acls_grant_nothing_more_to_an_owner_of_both(name):
    assert grants_of(acls.canned(name, OWNER, bucket_owner=OWNER)) == [(OWNER, "FULL_CONTROL")]


@pytest.mark.parametrize("name", ["bucket-owner-read", "bucket-owner-full-control"])
def test_bucket_owner_acls_on_a_bucket_are_private(name):
    assert grants_of(acls.canned(name, OWNER)) == [(OWNER, "FULL_CONTROL")]


def test_an_unknown_canned_acl_is_invalid_argument():
    with pytest.raises(InvalidArgument) as raised:
        acls.canned("public", OWNER)
    assert raised.value.details == {"ArgumentName": "x-amz-acl", "ArgumentValue": "public"}


# -- decisions --------------------------------------------------------------------------------------


def test_all_users_includes_anonymous_callers():
    acl = acls.canned("public-read", OWNER)
    assert acls.allows(acl, ANONYMOUS, acls.READ)
    assert acls.allows(acl, caller("someone"), acls.READ)
    assert not acls.allows(acl, ANONYMOUS, acls.WRITE)


def test_authenticated_users_excludes_anonymous_callers():
    acl = acls.canned("authenticated-read", OWNER)
    assert acls.allows(acl, caller("someone"), acls.READ)
    assert not acls.allows(acl, ANONYMOUS, acls.READ)


def test_full_control_implies_every_permission():
    acl = {"owner": OWNER, "grants": [acls.user_grant("friend", acls.FULL_CONTROL)]}
    assert all(acls.allows(acl, caller("friend"), p) for p in acls.PERMISSIONS)
    assert not any(acls.allows(acl, caller("stranger"), p) for p in acls.PERMISSIONS)


def test_a_grant_gives_only_its_own_permission():
    acl = {"owner": OWNER, "grants": [acls.user_grant("friend", acls.READ_ACP)]}
    allowed = [p for p in acls.PERMISSIONS if acls.allows(acl, caller("friend"), p)]
    assert allowed == [acls.READ_ACP]


def test_an_owner_without_grants_keeps_only_the_acl_permissions():
    acl = {"owner": OWNER, "grants": []}
    allowed = [p for p in acls.PERMISSIONS if acls.allows(acl, caller(OWNER), p)]
    assert allowed == [acls.READ_ACP, acls.WRITE_ACP]


def test_an_admin_may_do_anything_on_an_acl_granting_nothing():
    acl = {"owner": OWNER, "grants": []}
    assert all(acls.allows(acl, caller("root", admin=True), p) for p in acls.PERMISSIONS)


def test_aws_exec_read_lets_the_image_registry_read_and_nobody_else():
    acl = acls.canned("aws-exec-read", OWNER)
    assert acls.allows(acl, caller(acls.EXEC_READ_USER), acls.READ)
    assert not acls.allows(acl, caller(acls.EXEC_READ_USER), acls.READ_ACP)
    assert not acls.allows(acl, caller("someone"), acls.READ)
    assert not acls.allows(acl, ANONYMOUS, acls.READ)


def test_log_delivery_grants_reach_no_caller():
    acl = {"owner": OWNER, "grants": [acls.group_grant(acls.LOG_DELIVERY, acls.FULL_CONTROL)]}
    assert not acls.allows(acl, caller("someone"), acls.READ)
    assert not acls.allows(acl, ANONYMOUS, acls.READ)


# -- grant headers ----------------------------------------------------------------------------------


def test_grant_header_values_may_be_quoted_or_bare_and_listed():
    value = 'id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers",emailAddress=a@example.com'
    assert parse_grant_header("x-amz-grant-read", value) == [
        ("id", "abc"),
        ("uri", "http://acs.amazonaws.com/groups/global/AllUsers"),
        ("emailaddress", "a@example.com"),
    ]


@pytest.mark.parametrize("value", ["", "abc", 'id="abc",', "id=", 'id="abc" id="def"', 'id="a"b"', ", id=abc", "=abc"])
def test_a_grant_header_that_is_not_a_list_of_grantees_is_invalid_argument(value):
    with pytest.raises(InvalidArgument) as raised:
        parse_grant_header("x-amz-grant-read", value)
    assert raised.value.message == "Argument format not recognized"
    assert raised.value.details == {"ArgumentName": "x-amz-grant-read", "ArgumentValue": value}


@pytest.fixture
def credentials(tmp_path):
    meta = Index(str(tmp_path / "meta.sqlite"), durable=False, reactor=reactor).open()
    yield Credentials(meta)
    meta.close()


def test_grant_headers_give_exactly_the_grants_they_name(credentials):
    friend, _, _ = credentials.create_user("friend")
    headers = {
        "x-amz-grant-read": f'id="{friend.id}", uri="{acls.ALL_USERS}"',
        "x-amz-grant-write-acp": f"id={friend.id}",
    }
    acl = acl_from_headers(headers, OWNER, credentials)
    assert acl == {
        "owner": OWNER,
        "grants": [
            acls.user_grant(friend.id, "READ"),
            acls.group_grant(acls.ALL_USERS, "READ"),
            acls.user_grant(friend.id, "WRITE_ACP"),
        ],
    }


def test_no_acl_headers_ask_for_nothing(credentials):
    assert acl_from_headers({}, OWNER, credentials) is None


def test_a_canned_acl_and_grant_headers_together_are_invalid_request(credentials):
    with pytest.raises(InvalidRequest) as raised:
        acl_from_headers({"x-amz-acl": "private", "x-amz-grant-read": f'uri="{acls.ALL_USERS}"'}, OWNER, credentials)
    assert raised.value.message == "Specifying both Canned ACLs and Header Grants is not allowed"


def test_a_grant_header_naming_an_unknown_user_is_invalid_argument(credentials):
    with pytest.raises(InvalidArgument) as raised:
        acl_from_headers({"x-amz-grant-read": 'id="nobody"'}, OWNER, credentials)
    assert raised.value.message == "Invalid id"
    assert raised.value.details == {"ArgumentName": "x-amz-grant-read", "ArgumentValue": "nobody"}


def test_a_grant_header_naming_an_unknown_group_is_invalid_argument(credentials):
    with pytest.raises(InvalidArgument):
        acl_from_headers(
            {"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/Nobody"'}, OWNER, credentials
        )


def test_a_grant_header_naming_an_email_address_cannot_be_resolved(credentials):
    with pytest.raises(UnresolvableGrantByEmailAddress) as raised:
        acl_from_headers({"x-amz-grant-full-control": 'emailAddress="a@example.com"'}, OWNER, credentials)
    assert raised.value.details == {"EmailAddress": "a@example.com"}


def test_the_image_registry_is_a_known_grantee(credentials):
    acl = acl_from_headers({"x-amz-grant-read": f'id="{acls.EXEC_READ_USER}"'}, OWNER, credentials)
    assert grants_of(acl) == [(acls.EXEC_READ_USER, "READ")]


# -- AccessControlPolicy documents -------------------------------------------------------------


def grantee(kind, child, value, xsi=True):
    attribute = f'xmlns:xsi="{XSI_NS}" xsi:type="{kind}"' if xsi else f'type="{kind}"'
    return f"<Grantee {attribute}><{child}>{value}</{child}></Grantee>"


def policy(*grants, owner=OWNER, namespace=True):
    owner_part = "" if owner is None else f"<Owner><ID>{owner}</ID><DisplayName>x</DisplayName></Owner>"
    listed = "".join(f"<Grant>{g}<Permission>{p}</Permission></Grant>" for g, p in grants)
    xmlns = f' xmlns="{S3_NS}"' if namespace else ""
    return (
        f"<AccessControlPolicy{xmlns}>{owner_part}<AccessControlList>{listed}</AccessControlList></AccessControlPolicy>"
    )


def test_a_policy_document_gives_its_grants(credentials):
    owner, _, _ = credentials.create_user("owner")
    friend, _, _ = credentials.create_user("friend")
    body = policy(
        (grantee("CanonicalUser", "ID", owner.id), "FULL_CONTROL"),
        (grantee("CanonicalUser", "ID", f"\n  {friend.id}\n"), "WRITE"),
        (grantee("Group", "URI", acls.AUTHENTICATED_USERS), "READ"),
        owner=owner.id,
    )
    acl = acl_from_document(body.encode(), owner.id, credentials)
    assert acl == {
        "owner": owner.id,
        "grants": [
            acls.user_grant(owner.id, "FULL_CONTROL"),
            acls.user_grant(friend.id, "WRITE"),
            acls.group_grant(acls.AUTHENTICATED_USERS, "READ"),
        ],
    }


def test_a_policy_without_a_namespace_is_read_too(credentials):
    body = policy((grantee("Group", "URI", acls.ALL_USERS), "READ"), namespace=False)
    assert grants_of(acl_from_document(body.encode(), OWNER, credentials)) == [(acls.ALL_USERS, "READ")]


def test_a_policy_with_no_grants_revokes_everything(credentials):
    assert acl_from_document(policy().encode(), OWNER, credentials) == {"owner": OWNER, "grants": []}


def test_a_policy_naming_another_owner_is_access_denied(credentials):
    with pytest.raises(AccessDenied):
        acl_from_document(policy(owner="someone-else").encode(), OWNER, credentials)


def test_a_policy_naming_an_unknown_user_is_invalid_argument(credentials):
    body = policy((grantee("CanonicalUser", "ID", "_foo"), "READ"))
    with pytest.raises(InvalidArgument) as raised:
        acl_from_document(body.encode(), OWNER, credentials)
    assert raised.value.message == "Invalid id"
    assert raised.value.details == {"ArgumentName": "CanonicalUser/ID", "ArgumentValue": "_foo"}


def test_a_policy_naming_an_email_address_cannot_be_resolved(credentials):
    body = policy((grantee("AmazonCustomerByEmail", "EmailAddress", "a@example.com"), "READ"))
    with pytest.raises(UnresolvableGrantByEmailAddress):
        acl_from_document(body.encode(), OWNER, credentials)


MALFORMED = {
    "not xml": "<AccessControlPolicy><Owner>",
    "a doctype": '<!DOCTYPE x [<!ENTITY e "e">]><AccessControlPolicy/>',
    "another root": "<Policy/>",
    "no owner": policy(owner=None),
    "an empty owner id": policy(owner=""),
    "two owners": policy().replace("<AccessControlList>", f"<Owner><ID>{OWNER}</ID></Owner><AccessControlList>"),
    "no list": f"<AccessControlPolicy><Owner><ID>{OWNER}</ID></Owner></AccessControlPolicy>",
    "something else in the list": policy().replace("<AccessControlList>", "<AccessControlList><Other/>"),
    "an unknown permission": policy((grantee("Group", "URI", acls.ALL_USERS), "EVERYTHING")),
    "no permission": policy().replace(
        "</AccessControlList>", f"<Grant>{grantee('Group', 'URI', acls.ALL_USERS)}</Grant></AccessControlList>"
    ),
    "an unknown grantee type": policy((grantee("Robot", "ID", OWNER), "READ")),
    "a type outside the xsi namespace": policy((grantee("Group", "URI", acls.ALL_USERS, xsi=False), "READ")),
    "a user without an id": policy((grantee("CanonicalUser", "DisplayName", "x"), "READ")),
    "a group without a uri": policy((grantee("Group", "ID", OWNER), "READ")),
    "too many grants": policy(*[(grantee("Group", "URI", acls.ALL_USERS), "READ")] * 101),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_policy_is_malformed_acl_error(credentials, case):
    with pytest.raises(MalformedACLError):
        acl_from_document(MALFORMED[case].encode(), OWNER, credentials)


# -- storing an object's ACL ------------------------------------------------------------------


@pytest.fixture
def store_options():
    """For the ``store`` fixture (tests/unit/conftest.py): these tests need no fsyncs."""
    return {"durable": False}


async def put(store, key, acl):
    writer = store.new_writer()
    writer.write(b"data")
    return await store.put_object("b", key, writer, owner=OWNER, acl=acl, headers={}, metadata={}, checksums={})


@pytest_twisted.ensureDeferred
async def test_set_object_acl_changes_only_the_acl(store):
    await store.create_bucket("b", OWNER, "r", acls.canned("private", OWNER))
    before = await put(store, "k", acls.canned("private", OWNER))
    public = acls.canned("public-read", OWNER)
    assert await store.set_object_acl("b", "k", public, expected=store.get_object("b", "k"))
    after = store.get_object("b", "k")
    assert after.acl == public
    assert (after.etag, after.modified, after.owner) == (before.etag, before.modified, before.owner)


@pytest_twisted.ensureDeferred
async def test_set_object_acl_refuses_an_object_replaced_since_it_was_read(store):
    await store.create_bucket("b", OWNER, "r", acls.canned("private", OWNER))
    await put(store, "k", acls.canned("public-read-write", OWNER))
    checked = store.get_object("b", "k")
    await put(store, "k", acls.canned("private", OWNER))  # an overwrite commits meanwhile
    assert not await store.set_object_acl("b", "k", acls.canned("public-read", OWNER), expected=checked)
    assert store.get_object("b", "k").acl == acls.canned("private", OWNER)


@pytest_twisted.ensureDeferred
async def test_set_object_acl_refuses_an_acl_changed_since_it_was_read(store):
    await store.create_bucket("b", OWNER, "r", acls.canned("private", OWNER))
    await put(store, "k", acls.canned("private", OWNER))
    checked = store.get_object("b", "k")
    await store.set_object_acl("b", "k", acls.canned("authenticated-read", OWNER), expected=checked)
    assert not await store.set_object_acl("b", "k", acls.canned("public-read", OWNER), expected=checked)
    assert store.get_object("b", "k").acl == acls.canned("authenticated-read", OWNER)


@pytest_twisted.ensureDeferred
async def test_set_object_acl_of_a_deleted_object_is_no_such_key(store):
    await store.create_bucket("b", OWNER, "r", acls.canned("private", OWNER))
    await put(store, "k", acls.canned("private", OWNER))
    checked = store.get_object("b", "k")
    await store.delete_object("b", "k")
    with pytest.raises(NoSuchKey):
        await store.set_object_acl("b", "k", acls.canned("public-read", OWNER), expected=checked)
