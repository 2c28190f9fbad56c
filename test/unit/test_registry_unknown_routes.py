"""`unknown_route`: what a path under /v2/ that no route serves answers (pure, no server)."""
from __future__ import annotations

import pytest

from registry.v2 import unknown_route

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("path", [
    f"/v2/acme/app/referrers/{DIGEST}",
    f"/v2/acme/no-such-package/referrers/{DIGEST}",
    "/v2/acme/app/tags/v1",
    "/v2/acme/app/blobs/uploads//etc/passwd",
    "/v2/acme/app/something-else",
    "/v2/_oci/ext/discover",
])
def test_a_path_no_route_serves_is_a_404_that_is_not_name_unknown(path):
    # oras-go falls back to the referrers tag schema on any 404 but NAME_UNKNOWN.
    error = unknown_route("GET", path)
    assert (error.status, error.code) == (404, "UNSUPPORTED")
    assert f"GET {path} is not part of the API this registry serves" in error.message


def test_the_referrers_answer_says_where_referrers_are_listed():
    assert "referrers tag schema" in unknown_route("GET", f"/v2/acme/app/referrers/{DIGEST}").message
    assert "referrers" not in unknown_route("GET", "/v2/acme/app/tags/v1").message


@pytest.mark.parametrize("path", [
    "/v2/acme/My-App/manifests/v1",
    "/v2/acme\x00/app/blobs/uploads/",
    "/v2//etc/passwd/manifests/v1",
    "/v2/acme/app%/blobs/" + DIGEST,
    "/v2/Acme/app/tags/list",
])
def test_a_resource_path_with_a_name_the_grammar_refuses_is_name_invalid(path):
    error = unknown_route("PUT", path)
    assert (error.status, error.code) == (400, "NAME_INVALID")
    assert "invalid repository name" in error.message
