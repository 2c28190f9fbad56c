"""The pipe against the Docker engines Pipelines users meet: Debian 12's 20.10, and Docker 26 with the
classic image store and with the containerd image store (test/fixtures/engines.py).

On each: `PUSH_ENGINE` auto, native and docker push the daemon's image as `docker push` does (on the
containerd store the very digest: the image ID; on the classic store the same image, config and layers);
a fresh daemon sends only what the registry lacks; PROTECT_TAGS and DRY_RUN decide before anything moves;
a daemon lost mid-push ends in one line with nothing tagged. A multi-platform image of the containerd
store (buildx `--platform a,b --load`) goes up whole with its attestations, PLATFORMS keeps some of it,
and a platform the daemon holds no content for is named.

The registry keeps a 15-minute grace before collecting (as crg.apkg.io does): Docker 26's push from the
containerd store puts each child manifest under the tag before the index, so with no grace a same-tag
collection could free a child the index is about to name.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import time

import pytest

from harness import pipe_process
from harness.accounts import TOKENS, default_config
from harness.engines import CONTAINERD_26, MAIN
from test.helpers.oci_client import Client
from test.helpers.pipe_runner import (
    assert_no_secret,
    assert_one_line_failure,
    pipe_variables,
    read_output,
    run_pipe,
    run_pipe_image,
)
from test.helpers.tcp_proxy import TcpProxy

APP = "acme/my-container-app"
OTHER = "acme/other-app"
KiB, MiB = 1024, 1024 * 1024
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
ATTESTATION = "vnd.docker.reference.digest"


@pytest.fixture
def registry(registry_factory):
    config = default_config()
    config["gc"]["grace_seconds"] = 900
    return registry_factory(config)


def variables(engine, registry_host: str, image: str, out=None, **overrides: str | None) -> dict[str, str]:
    found = pipe_variables(registry_host, image, **{"DOCKER_HOST": engine.docker_host, **overrides})
    if out is not None:
        found["BITBUCKET_PIPE_SHARED_STORAGE_DIR"] = str(out)
    return found


def manifest(registry, reference: str, repository: str = APP) -> tuple[str, dict]:
    r = Client(registry, repository, user="reader", actions="pull").get_manifest(reference)
    assert r.status_code == 200, (reference, r.status_code, r.text)
    assert "sha256:" + hashlib.sha256(r.content).hexdigest() == r.headers["Docker-Content-Digest"]
    return r.headers["Docker-Content-Digest"], r.json()


def tags_of(registry, package: str = "my-container-app") -> dict[str, str]:
    r = registry.api("GET", f"/workspaces/acme/packages/{package}")
    assert r.status_code == 200, r.text
    return {t["name"]: t["digest"] for t in r.json()["tags"]}


def check_image(registry, reference: str, engine, local: str) -> str:
    """The image under `reference` is the daemon's: every blob whole, the config and the diff IDs the
    daemon's (each layer, gunzipped, hashes to its diff ID); on the containerd store the digest is the
    image ID itself. Returns the digest."""
    digest, doc = manifest(registry, reference)
    attrs = engine.inspect(local)
    if engine.containerd_store:
        assert digest == attrs["Id"], "the containerd store names an image by its manifest's digest"
    if doc.get("mediaType") in INDEX_TYPES:
        children = [c for c in doc["manifests"] if not (c.get("annotations") or {}).get(ATTESTATION)]
        platform = next(c for c in children if c["platform"]["architecture"] == attrs["Architecture"])
        _, doc = manifest(registry, platform["digest"])
    client = Client(registry, APP, user="reader", actions="pull")
    config = client.get_blob(doc["config"]["digest"]).content
    if not engine.containerd_store:
        assert doc["config"]["digest"] == attrs["Id"], "the classic store names an image by its config"
    assert json.loads(config)["rootfs"]["diff_ids"] == attrs["RootFS"]["Layers"]
    for layer, diff_id in zip(doc["layers"], attrs["RootFS"]["Layers"], strict=True):
        blob = client.get_blob(layer["digest"]).content
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id
    return digest


def docker_push(engine, registry, local: str, remote: str) -> str:
    """`docker push` from the same daemon, logged in with the daemon's CLI: the reference digest."""
    login = engine.docker("login", registry.host, "-u", "pipelines", "--password-stdin", input=TOKENS["pipelines"])
    assert login.returncode == 0, login.stderr
    assert engine.docker("tag", local, remote).returncode == 0
    engine.built.append(remote)
    pushed = engine.docker("push", remote, timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    digest, _ = manifest(registry, remote.rsplit(":", 1)[1], OTHER)
    return digest


class TestEveryEngine:
    def test_auto_native_and_docker_push_the_daemons_image_as_docker_push_does(self, engine, registry, tmp_path,
                                                                                docker_config):
        local = engine.build(tmp_path / "ctx", [300 * KiB, 20 * KiB], attestations=True)
        reference = docker_push(engine, registry, local, f"{registry.host}/{OTHER}:by-docker")
        server, api = engine.docker("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}").stdout.split()
        digests = {}
        for mode, tags in (("auto", "a a2"), ("native", "n"), ("docker", "d")):
            out = tmp_path / mode
            run = run_pipe(variables(engine, registry.host, local, out, TAGS=tags, PUSH_ENGINE=mode))
            assert run.returncode == 0, str(run)
            store = "containerd" if engine.containerd_store else "classic"
            # The store is detected and said; the API spoken is the daemon's own, never newer.
            assert f"Docker daemon: Docker {server} (API {api}), the {store} image store" in run.stderr, str(run)
            output = read_output(out)
            expected = {"auto": "docker" if engine.containerd_store else "native"}.get(mode, mode)
            assert output["engine"] == expected, output
            for tag in tags.split():
                digests[tag] = check_image(registry, tag, engine, local)
            assert output["digest"] == digests[tags.split()[0]]
            assert output["platforms"] == ["linux/amd64"], output
            assert_no_secret(run, "pipelines", TOKENS["pipelines"])
        if engine.containerd_store:
            assert set(digests.values()) == {reference}, "every engine gives the digest docker push gives"
        else:
            assert digests["d"] == reference and digests["a"] == digests["n"], digests
        assert digests["a"] == digests["a2"]
        assert engine.refs_under(f"{registry.host}/{APP}") == [], "the temporary tags are removed"

    def test_a_fresh_daemon_sends_only_the_new_layer(self, engine, fresh_engine, registry, tmp_path):
        base = engine.build(tmp_path / "base", [3 * MiB, 2 * MiB, 1 * MiB])
        top = engine.build(tmp_path / "top", [400 * KiB], base=base)
        seeded = run_pipe(variables(engine, registry.host, base, TAGS="latest"))
        assert seeded.returncode == 0, str(seeded)
        step = fresh_engine(engine.kind, top)  # a daemon that never pushed anything, as each step has
        out = tmp_path / "out"
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port) as proxy:
            run = run_pipe(variables(step, proxy.host, top, out, TAGS="latest"))
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert (output["layers_uploaded"], output["layers_skipped"]) == (1, 3), output
        assert proxy.stats.bytes_from_client < 700 * KiB, proxy.stats  # 6 MiB of base layers stayed home
        check_image(registry, "latest", step, top)
        # What went up, as the registry holds it (the native engine also counts the config it sent).
        top_layer = manifest(registry, "latest")[1]["layers"][-1]["size"]
        assert top_layer <= output["pushed_bytes"] <= top_layer + 4 * KiB, (top_layer, output)

    def test_the_native_engine_on_the_containerd_store_sends_only_the_new_blob_as_stored(
            self, engine_26_containerd, fresh_engine, registry, tmp_path):
        """PUSH_ENGINE=native reads a fresh daemon's export (twice: a listing, then the blobs the registry
        lacks), skips what the registry holds, and sends the new layer as it is stored."""
        base = engine_26_containerd.build(tmp_path / "base", [3 * MiB, 2 * MiB])
        top = engine_26_containerd.build(tmp_path / "top", [400 * KiB], base=base)
        assert run_pipe(variables(engine_26_containerd, registry.host, base, TAGS="latest")).returncode == 0
        step = fresh_engine(CONTAINERD_26, top)
        out = tmp_path / "out"
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port) as proxy:
            run = run_pipe(variables(step, proxy.host, top, out, TAGS="latest", PUSH_ENGINE="native"))
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert (output["engine"], output["layers_uploaded"], output["layers_skipped"]) == ("native", 1, 2), output
        assert output["digest"] == step.image_id(top), "the stored manifest, byte for byte"
        assert proxy.stats.bytes_from_client < 600 * KiB, proxy.stats
        check_image(registry, "latest", step, top)

    def test_protect_tags_refuses_a_moved_release_and_a_rerun_passes(self, engine, registry, tmp_path):
        first = engine.build(tmp_path / "first", [50 * KiB])
        other = engine.build(tmp_path / "other", [60 * KiB])
        release = {"TAGS": "1.0.0 latest", "PROTECT_TAGS": "[0-9]*.*.*"}
        seeded = run_pipe(variables(engine, registry.host, first, **release))
        assert seeded.returncode == 0, str(seeded)
        held = tags_of(registry)["1.0.0"]
        before = tags_of(registry)

        run = run_pipe(variables(engine, registry.host, other, **release))
        words = ["PROTECT_TAGS refuses the push", f"1.0.0 holds {held}", "Nothing was pushed"]
        if engine.containerd_store:
            words.append(f"would give it {engine.image_id(other)}")  # exact: the image ID is the digest
        assert_one_line_failure(run, *words)
        assert tags_of(registry) == before

        out = tmp_path / "out"
        again = run_pipe(variables(engine, registry.host, first, out, **release))
        assert again.returncode == 0, str(again)
        assert read_output(out)["previous_digests"] == {"1.0.0": held, "latest": held}

    def test_a_dry_run_writes_nothing_then_the_push_does_what_it_said(self, engine, registry, tmp_path):
        local = engine.build(tmp_path / "ctx", [80 * KiB, 5 * KiB])
        out = tmp_path / "out"
        dry = run_pipe(variables(engine, registry.host, local, out, TAGS="1.0 latest", DRY_RUN="true"))
        assert dry.returncode == 0, str(dry)
        assert "Dry run: tag 1.0: new" in dry.stderr and "Dry run: tag latest: new" in dry.stderr, str(dry)
        if engine.containerd_store:
            assert f"Dry run: the tags would point at {engine.image_id(local)}" in dry.stderr, str(dry)
        assert not out.exists() and tags_of(registry) == {}
        pushed = run_pipe(variables(engine, registry.host, local, TAGS="1.0 latest"))
        assert pushed.returncode == 0, str(pushed)
        digest = tags_of(registry)["1.0"]
        again = run_pipe(variables(engine, registry.host, local, TAGS="1.0 latest", DRY_RUN="true"))
        assert again.returncode == 0, str(again)
        assert f"Dry run: the tags would point at {digest}" in again.stderr, str(again)
        assert "Dry run: tag 1.0: unchanged" in again.stderr, str(again)

    def test_a_daemon_lost_mid_export_fails_clearly_and_tags_nothing(self, engine, registry, tmp_path):
        """The native engine reading the export (on the containerd store, its second pass) when the
        daemon's connection is cut: reached over TCP as in Pipelines, the stream reset after 2 MiB."""
        local = engine.build(tmp_path / "ctx", [8 * MiB])
        socket = engine.docker_host.removeprefix("unix://")
        with TcpProxy(target_unix=socket, reset_after_server_bytes=2 * MiB, max_resets=10) as daemon:
            run = run_pipe(variables(engine, registry.host, local, TAGS="lost", PUSH_ENGINE="native",
                                     DOCKER_HOST=f"tcp://{daemon.host}"))
        assert_one_line_failure(run, "Docker daemon", local)
        assert "ended early" in run.last_line or "Lost the connection to the Docker daemon" in run.last_line, str(run)
        assert daemon.stats.server_resets >= 1
        assert tags_of(registry) == {}

    def test_a_daemon_killed_mid_push_fails_clearly_and_tags_nothing(self, engine, fresh_engine, registry,
                                                                      tmp_path):
        """The daemon's own push (PUSH_ENGINE=docker; `auto` on the containerd store) when the step's
        docker service dies: killed once the layer is flowing to a slow registry."""
        local = engine.build(tmp_path / "ctx", [12 * MiB])
        step = fresh_engine(engine.kind, local)
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, client_bytes_per_second=2 * MiB) as proxy:
            lost: list[float] = []

            def kill_once_flowing(pid: int) -> None:
                if not lost and proxy.stats.bytes_from_client >= 2 * MiB:
                    step.daemon.proc.kill()
                    lost.append(time.monotonic())

            run = pipe_process.run_pipe(variables(step, proxy.host, local, TAGS="lost", PUSH_ENGINE="docker"),
                                        timeout=180, watch=kill_once_flowing)
        assert lost, f"the push ended before the daemon was lost: {run}"
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        assert run.returncode == 1 and len(lines) == 1, str(run)
        assert "Lost the connection to the Docker daemon while pushing" in lines[0], str(run)
        assert "Traceback" not in run.output
        assert tags_of(registry) == {}


class TestThePipeImage:
    @pytest.mark.parametrize("kind", ["26-classic", CONTAINERD_26])
    def test_the_pipe_image_pushes_from_a_docker_26_service_over_tcp(self, kind, engine_daemons, pipe_image, registry,
                                                                     tmp_path):
        service = engine_daemons[kind]
        local = service.build(tmp_path / "ctx", [100 * KiB])
        try:
            clone = tmp_path / "build"
            clone.mkdir()
            step = variables(service, registry.host, local, clone, TAGS="from-step", DOCKER_HOST=service.tcp_host,
                             BITBUCKET_CLONE_DIR=str(clone))
            run = run_pipe_image(step, ["-v", f"{clone}:{clone}", "-w", str(clone)], image=pipe_image)
            assert run.returncode == 0, str(run)
            output = read_output(clone)
            assert output["engine"] == ("docker" if service.containerd_store else "native")
            assert output["digest"] == check_image(registry, "from-step", service, local)
        finally:
            service.remove_built()


class TestMultiPlatform:
    """buildx `--platform linux/amd64,linux/arm64 --load` into the containerd store: an index, each
    platform's manifest, and BuildKit's attestation manifest for each."""

    def build(self, daemon, tmp_path) -> str:
        return daemon.build(tmp_path / "ctx", [200 * KiB, 10 * KiB], attestations=True,
                            platforms="linux/amd64,linux/arm64")

    def test_it_goes_up_whole_with_its_attestations_by_every_engine(self, engine_26_containerd, registry, tmp_path,
                                                                   docker_config):
        daemon = engine_26_containerd
        local = self.build(daemon, tmp_path)
        image_id = daemon.image_id(local)
        reference = docker_push(daemon, registry, local, f"{registry.host}/{OTHER}:by-docker")
        assert reference == image_id
        for mode, tag in (("auto", "a"), ("native", "n"), ("docker", "d")):
            out = tmp_path / mode
            run = run_pipe(variables(daemon, registry.host, local, out, TAGS=tag, PUSH_ENGINE=mode))
            assert run.returncode == 0, str(run)
            output = read_output(out)
            assert (output["digest"], output["index_digest"]) == (image_id, image_id), output
            assert output["platforms"] == ["linux/amd64", "linux/arm64"], output
            digest, index = manifest(registry, tag)
            assert digest == image_id and len(index["manifests"]) == 4
            attestations = [c for c in index["manifests"] if (c.get("annotations") or {}).get(ATTESTATION)]
            assert len(attestations) == 2
            assert [m["digest"] for m in output["manifests"]] == [
                c["digest"] for c in index["manifests"] if c not in attestations]
            for child in index["manifests"]:  # each child and each of its blobs is there, whole
                _, doc = manifest(registry, child["digest"])
                client = Client(registry, APP, user="reader", actions="pull")
                for blob in [doc["config"], *doc["layers"]]:
                    got = client.get_blob(blob["digest"])
                    assert got.status_code == 200 and len(got.content) == blob["size"], blob

    def test_platforms_keeps_one_with_the_native_engine(self, engine_26_containerd, registry, tmp_path):
        daemon = engine_26_containerd
        local = self.build(daemon, tmp_path)
        out = tmp_path / "out"
        run = run_pipe(variables(daemon, registry.host, local, out, TAGS="arm", PLATFORMS="linux/arm64"))
        assert run.returncode == 0, str(run)
        assert "PUSH_ENGINE auto: the native engine (PLATFORMS keeps some platforms" in run.stderr, str(run)
        output = read_output(out)
        assert output["platforms"] == ["linux/arm64"] and output["digest"] != daemon.image_id(local), output
        _, index = manifest(registry, "arm")
        kept = [c for c in index["manifests"] if not (c.get("annotations") or {}).get(ATTESTATION)]
        assert [c["platform"]["architecture"] for c in kept] == ["arm64"]
        assert len(index["manifests"]) == 2, "the arm64 image and its attestation, nothing of amd64"
        forced = run_pipe(variables(daemon, registry.host, local, TAGS="arm", PLATFORMS="linux/arm64",
                                    PUSH_ENGINE="docker"))
        assert forced.returncode == 1 and "Invalid pipe variables (1 problem)" in forced.stdout, str(forced)
        assert "the daemon's push (PUSH_ENGINE=docker) sends every platform" in forced.stdout, str(forced)

    def test_a_platform_the_daemon_holds_no_content_for_is_named(self, engine_26_containerd, reference_registry,
                                                                 registry, tmp_path):
        daemon = engine_26_containerd
        local = self.build(daemon, tmp_path)
        # Out through distribution and back: `docker pull` of an index fetches the host's platform only.
        remote = f"{reference_registry.host}/acme/partial:1"
        assert daemon.docker("tag", local, remote).returncode == 0
        assert daemon.docker("push", remote).returncode == 0
        assert daemon.docker("rmi", local, remote).returncode == 0
        daemon.built.remove(local)
        pulled = daemon.docker("pull", remote)
        assert pulled.returncode == 0, pulled.stderr
        partial = "my-container-app:partial"
        assert daemon.docker("tag", remote, partial).returncode == 0
        daemon.built += [remote, partial]
        for mode in ("auto", "native"):
            run = run_pipe(variables(daemon, registry.host, partial, TAGS="partial", PUSH_ENGINE=mode))
            assert_one_line_failure(run, "holds no content for linux/arm64", "PLATFORMS to linux/amd64")
        assert "partial" not in tags_of(registry)
        out = tmp_path / "out"
        kept = run_pipe(variables(daemon, registry.host, partial, out, TAGS="partial", PLATFORMS="linux/amd64"))
        assert kept.returncode == 0, str(kept)
        assert read_output(out)["platforms"] == ["linux/amd64"]


def test_the_three_engines_are_what_they_claim(engine_daemons):
    """The harness starts what the tests say they run on: 20.10, and 26 with each store."""
    for kind, version, store in ((MAIN, "20.10", "classic"), ("26-classic", "26.", "classic"),
                                 (CONTAINERD_26, "26.", "containerd")):
        daemon = engine_daemons[kind]
        info = json.loads(daemon.docker("info", "--format", "{{json .}}").stdout)
        assert info["ServerVersion"].startswith(version), (kind, info["ServerVersion"])
        containerd = any(pair[0] == "driver-type" and "containerd" in pair[1] for pair in info["DriverStatus"])
        assert containerd == (store == "containerd"), (kind, info["DriverStatus"])
