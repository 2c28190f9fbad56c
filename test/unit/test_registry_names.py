"""The grammar of repository names, tags, digests and upload ids, and what paths they can build."""
from __future__ import annotations

from pathlib import Path

import pytest

from registry.blobfiles import BlobFiles
from registry.names import (
    NameError_,
    Repository,
    is_slug,
    is_tag,
    is_upload_id,
    parse_digest,
    parse_reference,
    parse_repository,
)

HEX = "a" * 64


@pytest.mark.parametrize("name, workspace, package", [
    ("acme/app", "acme", "app"),
    ("acme/my-container-app", "acme", "my-container-app"),
    ("acme/team/app", "acme", "team/app"),
    ("a0/b.c_d__e---f", "a0", "b.c_d__e---f"),
    ("x/y", "x", "y"),
])
def test_valid_repository_names_split_into_workspace_and_package(name, workspace, package):
    repo = parse_repository(name)
    assert repo == Repository(workspace, package)
    assert repo.name == name


@pytest.mark.parametrize("name", [
    "", "/", "acme/", "/acme/app", "acme//app", "acme/app/", "Acme/app", "acme/App",
    "acme/..", "acme/../etc", "../acme/app", "acme/./app", "acme/.app", "acme/app.", "acme/-app",
    "acme/app-", "acme/a___b", "acme/a..b", "acme%2Fapp", "acme/app%2F..", "acme\\app", "acme/app\x00",
    "acme/a\x00b", "acme/ app", "acme/app\n", "acme/app:tag", "acme/app@sha256", "acme/" + "a" * 251,
])
def test_invalid_repository_names_are_name_invalid(name):
    with pytest.raises(NameError_) as exc:
        parse_repository(name)
    assert exc.value.code == "NAME_INVALID"


def test_a_name_without_workspace_is_refused_with_the_expected_form():
    with pytest.raises(NameError_) as exc:
        parse_repository("app")
    assert exc.value.code == "NAME_INVALID"
    assert "<workspace>/<image>" in str(exc.value)


def test_repository_name_length_limit_is_255():
    ok = "acme/" + "a" * 250
    assert parse_repository(ok).package == "a" * 250
    with pytest.raises(NameError_):
        parse_repository(ok + "a")


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A-b_c.d", "0", "a" * 128])
def test_valid_tags(tag):
    assert is_tag(tag)
    assert parse_reference(tag) == (tag, None)


@pytest.mark.parametrize("tag", ["", ".hidden", "-x", "a" * 129, "a/b", "a b", "..", "a\x00", "é", "a\n"])
def test_invalid_tags_are_tag_invalid(tag):
    assert not is_tag(tag)
    with pytest.raises(NameError_) as exc:
        parse_reference(tag)
    assert exc.value.code == "TAG_INVALID"


def test_a_reference_with_a_colon_is_a_digest():
    assert parse_reference(f"sha256:{HEX}") == (None, f"sha256:{HEX}")
    with pytest.raises(NameError_) as exc:
        parse_reference("v1:2")
    assert exc.value.code == "DIGEST_INVALID"


@pytest.mark.parametrize("digest", [f"sha256:{HEX}", "sha256:" + "0123456789abcdef" * 4])
def test_valid_sha256_digests(digest):
    assert parse_digest(digest) == digest


@pytest.mark.parametrize("digest, fragment", [
    ("sha512:" + "a" * 128, "unsupported digest algorithm 'sha512'"),
    ("md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
    ("sha256+b64u:" + "a" * 43, "unsupported digest algorithm"),
    ("sha256:" + "A" * 64, "invalid sha256 digest"),
    ("sha256:" + "a" * 63, "invalid sha256 digest"),
    ("sha256:" + "a" * 65, "invalid sha256 digest"),
    ("sha256:" + "g" * 64, "invalid sha256 digest"),
    ("sha256:", "invalid digest"),
    ("sha256", "invalid digest"),
    (HEX, "invalid digest"),
    ("sha256:../../etc/passwd", "invalid digest"),
    ("sha256:" + "a" * 62 + "/.", "invalid digest"),
    ("sha256:" + "a" * 64 + "\x00", "invalid digest"),
    ("sha256:" + "a" * 64 + "\n", "invalid digest"),
    ("sha256:%2F" + "a" * 61, "invalid digest"),
    ("SHA256:" + HEX, "invalid digest"),
    ("", "invalid digest"),
])
def test_invalid_or_unsupported_digests_are_digest_invalid(digest, fragment):
    with pytest.raises(NameError_) as exc:
        parse_digest(digest)
    assert exc.value.code == "DIGEST_INVALID"
    assert fragment in str(exc.value)


@pytest.mark.parametrize("slug, ok", [
    ("acme", True), ("a", True), ("a-b_c.d", True), ("0", True),
    ("", False), ("-a", False), ("a-", False), ("..", False), (".", False), ("A", False), ("a/b", False),
    ("a" * 65, False), ("a\x00", False), ("acme\n", False),
])
def test_slugs(slug, ok):
    assert is_slug(slug) is ok


@pytest.mark.parametrize("value, ok", [
    ("0123456789abcdef" * 2, True),
    ("0123456789abcdef" * 2 + "0", False),
    ("../" + "a" * 29, False),
    ("A" * 32, False),
    ("0" * 32 + "\n", False),
    ("", False),
])
def test_upload_ids(value, ok):
    assert is_upload_id(value) is ok


class TestPathsStayUnderTheRoot:
    def test_blob_and_upload_paths_are_built_under_root(self, tmp_path: Path):
        files = BlobFiles(tmp_path)
        path = files.blob_path("acme", f"sha256:{HEX}")
        assert path == tmp_path / "blobs" / "acme" / "sha256" / "aa" / HEX
        assert files.upload_path("0" * 32) == tmp_path / "uploads" / ("0" * 32)

    @pytest.mark.parametrize("workspace, digest", [
        ("..", f"sha256:{HEX}"),
        ("/etc", f"sha256:{HEX}"),
        ("acme/..", f"sha256:{HEX}"),
        ("acme", "sha256:../../../../etc/passwd"),
        ("acme", f"sha512:{HEX}"),
        ("acme", f"sha256:{HEX}/../x"),
        ("acme\x00", f"sha256:{HEX}"),
        ("acme\n", f"sha256:{HEX}"),
        ("acme", f"sha256:{HEX}\n"),
    ])
    def test_blob_paths_refuse_anything_not_validated(self, tmp_path: Path, workspace, digest):
        with pytest.raises(ValueError):
            BlobFiles(tmp_path).blob_path(workspace, digest)

    @pytest.mark.parametrize("upload_id", ["..", "../../etc/passwd", "/abs", "a" * 31 + "/", "%2F" * 10 + "aa"])
    def test_upload_paths_refuse_anything_not_an_upload_id(self, tmp_path: Path, upload_id):
        with pytest.raises(ValueError):
            BlobFiles(tmp_path).upload_path(upload_id)
