"""Who may see, download, change and deregister an image: owner, other user, admin, anonymous.

Written out by hand from the registry's rules: a private image is its
owner's (and the admins'); a public one anyone may list and download, but
only its owner and admins may change or deregister it.
"""

import pytest_twisted

from tests.conftest import ADMIN_KEYS, live_server
from tests.functional.test_images import bundle_in_bucket, new_user
from tests.imaging import list_images, register, wait_settled
from tests.s3http import call, error_code

OWNER, OTHER, ADMIN, ANONYMOUS = "owner", "other user", "admin", "anonymous"
CALLERS = (OWNER, OTHER, ADMIN, ANONYMOUS)
RULES = {
    # visibility -> operation -> callers allowed
    "private": {"list": {OWNER, ADMIN}, "download": {OWNER, ADMIN}, "modify": {OWNER, ADMIN}},
    "public": {"list": set(CALLERS), "download": set(CALLERS), "modify": {OWNER, ADMIN}},
}


@pytest_twisted.ensureDeferred
async def test_visibility_matrix(tmp_path):
    async with live_server(tmp_path) as server:
        owner = await new_user(server, "olivia")
        other = await new_user(server, "oscar")
        keys = {OWNER: owner.keys, OTHER: other.keys, ADMIN: ADMIN_KEYS, ANONYMOUS: None}
        location, _, _ = await bundle_in_bucket(server, owner, tmp_path, 30_000)
        for visibility, rules in RULES.items():
            images = []
            for _ in range(2):
                _, answer = await register(server, location, owner.keys)
                images.append(answer["imageId"])
                assert (await wait_settled(server, answer["imageId"], owner.keys))["imageState"] == "available"
                if visibility == "public":
                    response, _ = await call(
                        server, "POST", f"/_images/?image_id={answer['imageId']}&operation=add", keys=owner.keys
                    )
                    assert response.code == 200
            image_id = images[0]
            for caller in CALLERS:
                cell = (visibility, caller)
                listed = image_id in await list_images(server, keys[caller])
                assert listed == (caller in rules["list"]), ("list", *cell)

                response, content = await call(server, "GET", f"/_images/{image_id}", keys=keys[caller])
                if caller in rules["download"]:
                    assert (response.code, len(content)) == (200, 30_000), ("download", *cell)
                else:
                    assert (response.code, error_code(content)) == (403, "AccessDenied"), ("download", *cell)

                path = f"/_images/?image_id={image_id}&description=by%20{caller.replace(' ', '%20')}"
                response, content = await call(server, "POST", path, keys=keys[caller])
                if caller in rules["modify"]:
                    assert response.code == 200, ("modify", *cell)
                else:
                    assert (response.code, error_code(content)) == (403, "AccessDenied"), ("modify", *cell)

                if caller not in rules["modify"]:
                    path = f"/_images/?image_id={image_id}"
                    response, content = await call(server, "DELETE", path, keys=keys[caller])
                    assert (response.code, error_code(content)) == (403, "AccessDenied"), ("deregister", *cell)

            # Making public or private is a change like any other.
            response, content = await call(
                server, "POST", f"/_images/?image_id={image_id}&operation=remove", keys=other.keys
            )
            assert (response.code, error_code(content)) == (403, "AccessDenied")

            # Those allowed deregister: the owner one image, the admin the other.
            for caller, victim in ((OWNER, images[0]), (ADMIN, images[1])):
                response, _ = await call(server, "DELETE", f"/_images/?image_id={victim}", keys=keys[caller])
                assert response.code == 204, ("deregister", visibility, caller)
            assert not set(images) & set(await list_images(server, ADMIN_KEYS))
