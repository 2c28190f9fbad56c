"""Property-based tests (hypothesis) over name parsing, digests, scopes and manifest validation."""
from __future__ import annotations

import hashlib
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.auth import parse_scope
from registry.errors import http_error
from registry.manifests import OCI_MANIFEST, parse_manifest
from registry.names import NameError_, is_slug, is_tag, parse_digest, parse_reference, parse_repository
from registry.storage_errors import ManifestInvalid

# Per test, not a global profile: other test modules keep their own settings.
thorough = settings(max_examples=300, deadline=None)

# Text biased towards the characters that matter: separators, dots, slashes, escapes, controls.
name_text = st.text(alphabet=st.sampled_from("ab09._-/%2F\\\x00\n :@A"), max_size=40)
component = st.from_regex(r"[a-z0-9]{1,6}((\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}", fullmatch=True)


@thorough
@given(name_text)
def test_parse_repository_accepts_only_safe_path_components(name):
    try:
        repo = parse_repository(name)
    except NameError_ as exc:
        assert exc.code == "NAME_INVALID"
        return
    parts = name.split("/")
    assert len(parts) >= 2 and repo.name == name
    for part in parts:
        assert part not in ("", ".", "..")
        assert not part.startswith((".", "-", "_")) and not part.endswith((".", "-", "_"))
        assert ".." not in part
    assert not any(c in name for c in "\x00\n\\%: ") and name == name.strip().lower()
    assert is_slug(repo.workspace)


@thorough
@given(st.lists(component, min_size=2, max_size=4))
def test_every_grammatical_name_is_accepted(parts):
    name = "/".join(parts)
    repo = parse_repository(name)
    assert repo.workspace == parts[0] and repo.package == "/".join(parts[1:])


@thorough
@given(st.binary(max_size=256))
def test_parse_digest_round_trips_sha256(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert parse_digest(digest) == digest
    tag, parsed = parse_reference(digest)
    assert tag is None and parsed == digest


@thorough
@given(st.text(max_size=80))
def test_parse_digest_accepts_only_sha256_with_64_lowercase_hex(text):
    try:
        parse_digest(text)
    except NameError_ as exc:
        assert exc.code == "DIGEST_INVALID"
        return
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", text)


@thorough
@given(st.text(alphabet=st.sampled_from("aZ09._-/:\n\x00 %"), max_size=140))
def test_references_are_tags_or_digests_never_both(reference):
    try:
        tag, digest = parse_reference(reference)
    except NameError_ as exc:
        assert exc.code in ("TAG_INVALID", "DIGEST_INVALID")
        return
    assert (tag is None) != (digest is None)
    if tag is not None:
        assert is_tag(tag) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag)


@thorough
@given(st.text(max_size=60), st.lists(st.sampled_from(["pull", "push", "delete", "*", "x", ""]), max_size=4))
def test_scope_grants_only_known_actions(name, actions):
    scope = parse_scope(f"repository:{name}:{','.join(actions)}")
    if scope is None:
        assert name == "" or not name
        return
    assert scope.name == name
    assert scope.actions <= {"pull", "push", "delete"}
    if "*" in actions:
        assert scope.actions == {"pull", "push", "delete"}


descriptor = st.fixed_dictionaries({
    "mediaType": st.one_of(st.just("application/octet-stream"), st.text(max_size=5), st.none(), st.integers()),
    "digest": st.one_of(st.binary(max_size=8).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest()),
                        st.text(max_size=10), st.none()),
    "size": st.one_of(st.integers(min_value=-3, max_value=10**12), st.text(max_size=3), st.booleans(), st.none()),
})
manifest_doc = st.fixed_dictionaries(
    {"schemaVersion": st.sampled_from([2, 2, 1, "2"])},
    optional={
        "mediaType": st.sampled_from([OCI_MANIFEST, "application/vnd.oci.image.index.v1+json", "x", 3]),
        "config": st.one_of(descriptor, st.text(max_size=4)),
        "layers": st.one_of(st.lists(descriptor, max_size=3),
                            st.dictionaries(st.text(max_size=2), descriptor, max_size=1)),
        "manifests": st.lists(descriptor, max_size=3),
    },
)


@thorough
@given(manifest_doc, st.sampled_from([None, OCI_MANIFEST, "application/json"]))
def test_manifest_validation_accepts_or_answers_manifest_invalid(doc, content_type):
    raw = json.dumps(doc).encode()
    try:
        parsed = parse_manifest(raw, content_type)
    except ManifestInvalid as exc:
        answer = http_error(exc)
        assert answer.code == "MANIFEST_INVALID" and answer.status == 400
        return
    # Whatever is accepted references only well-formed sha256 digests with sane sizes.
    for d in parsed.blobs + parsed.manifests:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", d.digest)
        assert isinstance(d.size, int) and not isinstance(d.size, bool) and d.size >= 0
        assert isinstance(d.media_type, str) and d.media_type


@thorough
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_manifest_validation(raw):
    try:
        parse_manifest(raw, None)
    except ManifestInvalid as exc:
        assert http_error(exc).code == "MANIFEST_INVALID"
