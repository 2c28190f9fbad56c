"""Immutable tag settings: RE2 patterns validated as crg.apkg.io says, matching, the config's `admins`
and `immutable_tags`, and the store's enforcement (refusal, no-op, deletes, what persists)."""
from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import time
from pathlib import Path

import pytest

from harness.accounts import default_config
from registry.config import ConfigError, parse_config
from registry.errors import http_error
from registry.immutable_tags import (
    MAX_PATTERN,
    ImageHoldsImmutableTags,
    ImmutableTags,
    Rule,
    TagDeleteRefused,
    TagOverwriteRefused,
    check_sample,
    first_match,
    parse_immutable_tags,
    pattern_problem,
)
from registry.store import Store
from registry.uploads import Chunk

RELEASES = {"name": "releases", "pattern": r"^v\d+\.\d+\.\d+$"}
PRODUCTION = {"name": "production", "pattern": "^prod$"}


def settings(raw) -> ImmutableTags:
    parsed, problems = parse_immutable_tags(raw)
    assert problems == []
    return parsed


class TestPatterns:
    @pytest.mark.parametrize("pattern", [r"^v\d+\.\d+\.\d+$", "^prod$", "^release-.*$", r"\p{L}+", "(?i)^rc",
                                         "x" * MAX_PATTERN])
    def test_re2_accepts(self, pattern):
        assert pattern_problem(pattern) is None

    @pytest.mark.parametrize("pattern, reason", [
        ("^(?=v)v1$", "invalid perl operator: (?="),  # a lookahead: Python's re takes it, RE2 does not
        (r"^(a)\1$", "invalid escape sequence: \\1"),  # a backreference
        ("^(?<!x)v$", "invalid perl operator: (?<!"),  # a lookbehind
        ("[", "missing ]: ["),
        ("a{1001}", "invalid repetition size: {1001}"),
    ])
    def test_re2_refuses_what_python_may_take(self, pattern, reason):
        problem = pattern_problem(pattern)
        assert problem is not None and f"RE2 does not accept the pattern {pattern!r}: {reason}" == problem

    def test_length_is_counted_in_characters(self):
        assert pattern_problem("é" * MAX_PATTERN) is None
        assert pattern_problem("x" * (MAX_PATTERN + 1)) == "the pattern has 101 characters; at most 100"

    @pytest.mark.parametrize("pattern", ["", None, 5, ["^a$"]])
    def test_a_pattern_is_a_non_empty_string(self, pattern):
        assert pattern_problem(pattern) == "a pattern is required (an RE2 regular expression)"

    def test_matching_is_a_search_in_the_tag_and_the_first_rule_wins(self):
        rules = [Rule("releases", RELEASES["pattern"]), Rule("any-v", "v"), Rule("production", "^prod$")]
        assert first_match(rules, "v1.2.3").name == "releases"
        assert first_match(rules, "dev1.2").name == "any-v"  # unanchored: found anywhere in the tag
        assert first_match(rules, "prod").name == "production"
        assert first_match(rules, "production") is None and first_match(rules, "latest") is None

    def test_matching_stays_linear_where_a_backtracking_engine_would_not_end(self):
        rule = Rule("nested", "^(a+)+$")  # catastrophic for Python's re on "aaa…ab"
        started = time.monotonic()
        assert not rule.matches("a" * 128 + "!")
        assert time.monotonic() - started < 0.5


class TestSettings:
    def test_the_three_options(self):
        assert settings(None).protection("anything") is None
        assert settings({"protect": "none", "rules": [RELEASES]}).protection("v1.0.0") is None
        everything = settings({"protect": "all"}).protection("latest")
        assert everything is not None and everything.rule is None
        some = settings({"protect": "some", "rules": [RELEASES, PRODUCTION]})
        assert some.protection("v1.0.0").rule.name == "releases"
        assert some.protection("prod").rule.name == "production"
        assert some.protection("latest") is None

    def test_rules_are_kept_under_none_and_all_and_round_trip(self):
        kept = settings({"protect": "all", "rules": [RELEASES]})
        assert kept.as_dict() == {"protect": "all", "rules": [RELEASES]}
        assert json.loads(kept.to_json()) == kept.as_dict()

    def test_every_problem_is_listed(self):
        raw = {"protect": "most", "extra": 1, "rules": [
            {"name": "", "pattern": "(?=x)"}, {"name": "a", "pattern": "x" * 101}, {"name": "a", "pattern": "^b$"},
            "^c$", {"name": "d", "pattern": "^d$", "why": "?"},
            RELEASES, PRODUCTION, {"name": "h", "pattern": "h"},
        ]}
        parsed, problems = parse_immutable_tags(raw, "workspaces.acme.immutable_tags")
        assert parsed == ImmutableTags()
        assert problems == [
            "workspaces.acme.immutable_tags: unknown keys extra; known: protect, rules",
            "workspaces.acme.immutable_tags.protect must be one of none, all, some, got 'most'",
            "workspaces.acme.immutable_tags.rules has 8 rules; at most 7",
            "workspaces.acme.immutable_tags.rules[0].name: a rule needs a name",
            "workspaces.acme.immutable_tags.rules[0].pattern: RE2 does not accept the pattern '(?=x)': "
            "invalid perl operator: (?=",
            "workspaces.acme.immutable_tags.rules[1].pattern: the pattern has 101 characters; at most 100",
            "workspaces.acme.immutable_tags.rules[2].name: another rule is named 'a'; names are unique",
            "workspaces.acme.immutable_tags.rules[3] must be a mapping of name and pattern",
            "workspaces.acme.immutable_tags.rules[4]: unknown keys why; known: name, pattern",
        ]

    @pytest.mark.parametrize("raw, problem", [
        ({"protect": "some"}, "rules: protect: some needs at least one rule"),
        ({"protect": "some", "rules": []}, "rules: protect: some needs at least one rule"),
        ({"protect": "some", "rules": "^v$"}, "rules must be a list of {name, pattern}"),
        ("all", "the settings must be a mapping of protect and rules, got str"),
        ({"protect": "some", "rules": [{"pattern": "^v$"}]}, "rules[0].name: a rule needs a name"),
        ({"protect": "some", "rules": [{"name": "n" * 101, "pattern": "^v$"}]},
         "rules[0].name has 101 characters; at most 100"),
    ])
    def test_one_problem(self, raw, problem):
        assert parse_immutable_tags(raw)[1] == [problem]

    def test_the_pattern_tester(self):
        rules = [Rule("broken", "(?=v)"), Rule("releases", RELEASES["pattern"])]
        assert check_sample("some", rules, "v1.2.3") == r"'v1.2.3' matches the rule 'releases' (^v\d+\.\d+\.\d+$)."
        assert check_sample("some", rules, "latest") == "No rule matches 'latest': it stays mutable."
        assert check_sample("all", rules, "latest") == "'latest' is protected: all tags are."
        assert check_sample("none", rules, "v1.0.0").endswith("(rules apply only when some tags are protected).")


class TestConfig:
    def config(self, **workspace) -> dict:
        data = copy.deepcopy(default_config())
        data["workspaces"]["acme"].update(workspace)
        return data

    def test_admins_and_settings_are_read_and_an_admin_administers_every_repository(self):
        config = parse_config(self.config(admins=["dev@example.com"],
                                          immutable_tags={"protect": "some", "rules": [RELEASES]}))
        ws = config.workspaces["acme"]
        assert ws.admins == {"dev@example.com"}
        assert ws.members["dev@example.com"].roles == {"web-app": "admin", "tools": "admin"}
        assert ws.members["reader"].roles == {"web-app": "read"}
        assert ws.immutable_tags.protection("v2.0.0").rule == Rule("releases", RELEASES["pattern"])
        assert config.workspaces["globex"].admins == frozenset()
        assert config.workspaces["globex"].immutable_tags == ImmutableTags()

    def test_every_problem_of_admins_and_settings_is_listed_with_the_others(self):
        data = self.config(admins=["boss", "ghost", "nobody@example.com"], immutable_tags={
            "protect": "some", "rules": [{"name": "look", "pattern": "^(?!dev)"}]}, immutable_tag={})
        data["gc"]["grace_seconds"] = -1
        with pytest.raises(ConfigError) as exc:
            parse_config(data)
        text = str(exc.value)
        assert "has 4 problem(s)" in text
        assert ("workspaces.acme.admins: 'ghost', 'nobody@example.com' not among the workspace's members; "
                "a workspace admin is a member, by username") in text
        assert "workspaces.acme.immutable_tags.rules[0].pattern: RE2 does not accept the pattern '^(?!dev)'" in text
        assert "workspaces.acme: unknown keys immutable_tag; known: repositories, packages, members, admins" in text

    @pytest.mark.parametrize("admins", ["boss", [1], {"boss": True}])
    def test_admins_is_a_list_of_usernames(self, admins):
        with pytest.raises(ConfigError, match="workspaces.acme.admins must be a list of member usernames"):
            parse_config(self.config(admins=admins))


# -- the store, in-process ------------------------------------------------------------------------
async def body(data: bytes):
    yield data


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push_image(store: Store, package, tag: str | None, layer: bytes) -> str:
    """A one-layer image under `tag` (or by digest); returns its manifest's digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "layer": layer.hex()[:16]}).encode()
    for blob in (config, layer):
        await store.upload_blob(package, "boss", Chunk(body(blob), len(blob), digest=digest_of(blob)))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(layer),
                    "size": len(layer)}],
    }).encode()
    digest, _ = await store.put_manifest(package, tag or digest_of(manifest), manifest, None)
    return digest


def store_config(immutable_tags: dict | None, admins: list[str] = ("boss",)):
    data = copy.deepcopy(default_config())
    data["workspaces"]["acme"]["admins"] = list(admins)
    if immutable_tags is not None:
        data["workspaces"]["acme"]["immutable_tags"] = immutable_tags
    return parse_config(data)


def run(scenario, root: Path, immutable_tags: dict | None):
    async def main():
        store = Store(root, store_config(immutable_tags))
        try:
            return await scenario(store)
        finally:
            store.close()
    return asyncio.run(main())


class TestStore:
    def test_an_overwrite_is_refused_with_nothing_changed_and_the_same_digest_is_a_no_op(self, tmp_path):
        async def scenario(store: Store):
            package = await store.package("acme", "my-container-app")
            first = await push_image(store, package, "v1.0.0", b"one")
            before = await store.package_contents(package)
            figures = await store.storage_figures("acme")
            dereferenced: list[str] = []
            store.on_dereference = dereferenced.append
            with pytest.raises(TagOverwriteRefused) as exc:
                await push_image(store, package, "v1.0.0", b"two")
            answer = http_error(exc.value)
            assert (answer.status, answer.code) == (400, "TAG_INVALID")
            assert answer.message == (
                r"The tag 'v1.0.0' of acme/my-container-app is immutable: the workspace's rule 'releases' "
                rf"(^v\d+\.\d+\.\d+$) protects it. It holds {first} and cannot be overwritten; push a new tag, "
                "or ask a workspace admin.")
            assert answer.detail == {"tag": "v1.0.0", "digest": first, "rule": "releases"}
            after = await store.package_contents(package)
            # No orphaned manifest: the refused one was never stored; its blobs were (uploads come first).
            assert after.tags == before.tags and after.manifests == before.manifests
            assert (await store.storage_figures("acme")).manifests == figures.manifests
            assert dereferenced == []
            assert await push_image(store, package, "v1.0.0", b"one") == first  # the same digest: accepted
            assert (await store.package_contents(package)).tags == before.tags  # updated_at too
            # A mutable tag still moves, and an immutable one may be written by digest or under a new tag.
            await push_image(store, package, "latest", b"one")
            await push_image(store, package, "latest", b"two")
            await push_image(store, package, "v1.0.1", b"two")
            assert dereferenced == ["acme"]
        run(scenario, tmp_path, {"protect": "some", "rules": [RELEASES]})

    def test_all_tags_protected_names_no_rule(self, tmp_path):
        async def scenario(store: Store):
            package = await store.package("acme", "my-container-app")
            first = await push_image(store, package, "latest", b"one")
            with pytest.raises(TagOverwriteRefused) as exc:
                await push_image(store, package, "latest", b"two")
            answer = http_error(exc.value)
            assert "is immutable: the workspace protects all tags. It holds " + first in answer.message
            assert answer.detail["rule"] is None
        run(scenario, tmp_path, {"protect": "all"})

    def test_of_two_pushes_to_a_new_immutable_tag_at_once_exactly_one_is_kept(self, tmp_path):
        async def scenario(store: Store):
            package = await store.package("acme", "my-container-app")
            for round_ in range(20):
                tag = f"v{round_}.0.0"
                results = await asyncio.gather(
                    *(push_image(store, package, tag, f"{round_}-{i}".encode()) for i in range(3)),
                    return_exceptions=True)
                kept = [r for r in results if isinstance(r, str)]
                refused = [http_error(r) for r in results if isinstance(r, TagOverwriteRefused)]
                assert len(kept) == 1 and len(refused) == 2, results
                assert all(r.code == "TAG_INVALID" and r.detail["digest"] == kept[0] for r in refused)
                assert (await store.resolve(package, tag)).digest == kept[0]
        run(scenario, tmp_path, {"protect": "some", "rules": [RELEASES]})

    def test_deletes_of_immutable_tags_need_a_workspace_admin(self, tmp_path):
        async def scenario(store: Store):
            package = await store.package("acme", "my-container-app")
            await push_image(store, package, "v1.0.0", b"one")
            await push_image(store, package, "prod", b"two")
            await push_image(store, package, "latest", b"two")
            with pytest.raises(TagDeleteRefused) as exc:
                await store.delete_tag(package, "prod", False)
            answer = http_error(exc.value)
            assert (answer.status, answer.code) == (403, "DENIED")
            assert answer.message == ("The tag 'prod' of acme/my-container-app is immutable (the workspace's rule "
                                         "'production' (^prod$)); only a workspace admin can delete it.")
            with pytest.raises(ImageHoldsImmutableTags) as exc:
                await store.delete_package(package, False)
            assert http_error(exc.value).message == (
                "The image acme/my-container-app holds immutable tags (prod, v1.0.0); "
                "only a workspace admin can delete it.")
            assert len((await store.package_contents(package)).tags) == 3  # nothing went
            assert await store.delete_tag(package, "latest", False)
            assert await store.delete_tag(package, "prod", True)
            assert await store.delete_package(package, True) == 1
        run(scenario, tmp_path, {"protect": "some", "rules": [RELEASES, PRODUCTION]})

    def test_settings_changed_through_the_api_survive_a_restart_until_the_config_changes(self, tmp_path):
        some = {"protect": "some", "rules": [RELEASES]}

        async def start(immutable_tags, change: ImmutableTags | None = None) -> ImmutableTags:
            store = Store(tmp_path, store_config(immutable_tags))
            try:
                if change is not None:
                    await store.set_immutable_tags("acme", change, "boss")
                return await store.immutable_tags("acme")
            finally:
                store.close()

        assert asyncio.run(start(some)).as_dict() == some
        assert asyncio.run(start(some, ImmutableTags("all"))).protect == "all"
        assert asyncio.run(start(some)).protect == "all"  # the config's are what they were: the API's change stays
        assert asyncio.run(start({"protect": "none"})).protect == "none"  # the config was edited: it wins
        assert asyncio.run(start(None)).protect == "none"
