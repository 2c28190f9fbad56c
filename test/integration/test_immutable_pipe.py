"""The pipe against a workspace with immutable tags (the emulator's Container settings, as crg.apkg.io has
them): a re-run writes nothing and passes, a refused move is one line saying what the tag holds, what it
would have got and which tags were written, tags that move go before new ones, for both engines, on Docker
20.10 and on Docker 26 with the containerd image store. What the registry holds is read back through its
management API; the rules are set in the config and changed through the API as a workspace admin.
"""
from __future__ import annotations

import re

import pytest

from harness.accounts import TOKENS, default_config
from test.helpers.pipe_runner import assert_no_secret, assert_one_line_failure, pipe_variables, read_output, run_pipe

APP = "acme/my-container-app"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
RELEASES = {"name": "releases", "pattern": r"^v\d+\.\d+\.\d+$"}


def immutable_config(protect: str, rules: list[dict] | None = None) -> dict:
    config = default_config()
    config["gc"]["grace_seconds"] = 900  # Docker 26's containerd push puts child manifests under the tag first
    workspace = config["workspaces"]["acme"]
    workspace["admins"] = ["boss"]
    workspace["immutable_tags"] = {"protect": protect, **({"rules": rules} if rules else {})}
    return config


def tags_of(registry) -> dict[str, str]:
    r = registry.api("GET", "/workspaces/acme/packages/my-container-app")
    assert r.status_code == 200, r.text
    return {t["name"]: t["digest"] for t in r.json()["tags"]}


def pushed_digest(run) -> str:
    found = set(DIGEST.findall(run.last_line))
    assert len(found) == 1, str(run)
    return found.pop()


def set_protection(registry, protect: str, rules: list[dict] | None = None) -> None:
    body = {"protect": protect, **({"rules": rules} if rules else {})}
    r = registry.api("PUT", "/workspaces/acme/container-settings", user="boss", json=body)
    assert r.status_code in (200, 204), r.text


@pytest.mark.parametrize("engine", ["native", "docker"])
def test_a_release_rerun_writes_no_tag_and_a_moved_release_is_refused_with_what_was_written(
        engine, registry_factory, image_factory, tmp_path):
    registry = registry_factory(immutable_config("some", [RELEASES]))
    first = image_factory(layers=[60_000])
    tags = "latest v1.2.3 build-1"
    seeded = run_pipe(pipe_variables(registry.host, first, TAGS=tags, PUSH_ENGINE=engine))
    assert seeded.returncode == 0, str(seeded)
    held = pushed_digest(seeded)
    assert tags_of(registry) == dict.fromkeys(["latest", "v1.2.3", "build-1"], held)

    # The same release again under "all tags are protected": every tag holds the digest, none is written.
    set_protection(registry, "all")
    out = tmp_path / "rerun"
    again = run_pipe(pipe_variables(registry.host, first, TAGS=tags, PUSH_ENGINE=engine,
                                    BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out)))
    assert again.returncode == 0, str(again)
    assert pushed_digest(again) == held
    assert "Tag v1.2.3: unchanged (not written)" in again.stderr
    output = read_output(out)
    assert (output["tags_written"], output["tags_unchanged"]) == ([], tags.split())

    # Another build of the same release, with a new tag too: `latest` moves first (only the rule protects
    # v1.2.3), then v1.2.3 is refused, and build-2 (new) is never written.
    set_protection(registry, "some", [RELEASES])
    other = image_factory(layers=[80_000])
    out = tmp_path / "refused"
    run = run_pipe(pipe_variables(registry.host, other, TAGS="latest v1.2.3 build-2", PUSH_ENGINE=engine,
                                  BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out)))
    line = assert_one_line_failure(run, "refused to move tag v1.2.3", f"it holds {held}", "immutable-tag settings",
                                   "releases", "Written: latest; not written: v1.2.3, build-2",
                                   "push a new tag", "{commit:7}", "workspace admin")
    after = tags_of(registry)
    moved = after["latest"]
    assert moved != held and after["v1.2.3"] == held and "build-2" not in after
    if engine == "native":  # the native engine knows the digest before it writes a tag
        assert f"would have given it {moved}" in line
    refused = read_output(out)
    assert refused["refused_tag"] == "v1.2.3" and line.endswith(refused["error"])
    assert (refused["tags_written"], refused["tags_not_written"]) == (["latest"], ["v1.2.3", "build-2"])
    assert_no_secret(run, "pipelines", TOKENS["pipelines"])


def test_moving_tags_are_written_before_new_ones_so_a_refusal_writes_no_new_tag(registry_factory, image_factory):
    registry = registry_factory(immutable_config("all"))
    first = image_factory(layers=[50_000])
    assert run_pipe(pipe_variables(registry.host, first, TAGS="stable")).returncode == 0
    before = tags_of(registry)
    second = image_factory(layers=[70_000])
    # TAGS names the new tag first; the pipe still tries the tag that moves first, and stops there.
    run = run_pipe(pipe_variables(registry.host, second, TAGS="fresh-1 stable"))
    line = assert_one_line_failure(run, "refused to move tag stable", "No tag was written", "protects all tags")
    assert "fresh-1" not in tags_of(registry) and tags_of(registry) == before, line


def test_a_dry_run_says_that_moving_tags_may_be_immutable(registry_factory, image_factory):
    registry = registry_factory(immutable_config("all"))
    first = image_factory(layers=[40_000])
    assert run_pipe(pipe_variables(registry.host, first, TAGS="v1.0.0 latest")).returncode == 0
    dry = run_pipe(pipe_variables(registry.host, image_factory(layers=[45_000]), TAGS="v1.0.0 new-1",
                                  DRY_RUN="true"))
    assert dry.returncode == 0, str(dry)
    assert "Dry run: tag new-1: new" in dry.stderr
    assert ("Dry run: v1.0.0 would move: if the workspace's immutable-tag settings protect it, the registry "
            "refuses the move (a dry run cannot read those settings)") in dry.stderr


class TestContainerdStore:
    def test_the_daemons_push_skips_tags_that_hold_the_image_and_explains_its_own_refusal(
            self, engine_26_containerd, registry_factory, tmp_path):
        engine = engine_26_containerd
        registry = registry_factory(immutable_config("all"))
        local = engine.build(tmp_path / "ctx", [100_000], attestations=True)
        host = {"DOCKER_HOST": engine.docker_host}
        # Native writes the platforms' manifests by digest and the index under the tags: a new immutable
        # tag takes one write.
        native = run_pipe(pipe_variables(registry.host, local, TAGS="v1.0.0", PUSH_ENGINE="native", **host))
        assert native.returncode == 0, str(native)
        assert tags_of(registry)["v1.0.0"] == engine.image_id(local)

        # auto takes the daemon's push here: every tag holds the image ID, so nothing is pushed at all.
        again = run_pipe(pipe_variables(registry.host, local, TAGS="v1.0.0", **host))
        assert again.returncode == 0, str(again)
        assert "Every tag already holds" in again.stderr and "through the Docker daemon" not in again.stderr

        # A new tag through the daemon's push: Docker puts a platform's manifest under the tag before the
        # index, so the tag's first write makes it immutable and the index is refused; the pipe says why.
        fresh = run_pipe(pipe_variables(registry.host, local, TAGS="v1.0.1", PUSH_ENGINE="docker", **host))
        line = assert_one_line_failure(fresh, "refused to move tag v1.0.1", "immutable-tag settings",
                                       f"would have given it {engine.image_id(local)}", "PUSH_ENGINE: native")
        took = tags_of(registry)["v1.0.1"]
        assert took != engine.image_id(local) and f"it holds {took}" in line  # one platform's manifest

        # Another image over the existing release through the daemon's push: refused, the tag as it was.
        other = engine.build(tmp_path / "ctx2", [120_000], attestations=True)
        moved = run_pipe(pipe_variables(registry.host, other, TAGS="v1.0.0", PUSH_ENGINE="docker", **host))
        line = assert_one_line_failure(moved, "refused to move tag v1.0.0", f"it holds {engine.image_id(local)}",
                                       f"would have given it {engine.image_id(other)}", "immutable-tag settings",
                                       "Docker passes on only the status", "No tag was written")
        assert "PUSH_ENGINE: native" not in line
        assert tags_of(registry)["v1.0.0"] == engine.image_id(local)
