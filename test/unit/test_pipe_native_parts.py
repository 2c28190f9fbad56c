"""The native engine's pure parts: challenge and header parsing, layer positions in a docker save
stream, reproducible compression, the manifest it writes, and its variables."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random

import pytest

from pipe.client.answers import is_loopback, parse_range_end, parse_retry_after
from pipe.client.auth import parse_challenge
from pipe.client.transport import CaSession
from pipe.compression import GzipLayer
from pipe.engine.chunks import PIECE, StreamedChunk
from pipe.errors import PipeFailure
from pipe.oci import Descriptor, docker_manifest
from pipe.sources.positions import ChainPositions
from pipe.variables import InvalidVariables, parse_settings

BASE = {"IMAGE_NAME": "app:1", "WORKSPACE": "acme", "BITBUCKET_PACKAGES_USERNAME": "u",
        "BITBUCKET_PACKAGES_TOKEN": "t", "REGISTRY": "crg.apkg.io"}


def test_bearer_challenge_with_quoted_commas():
    c = parse_challenge('Bearer realm="https://r.example/token?a=1,b=2",service="crg",scope="repository:a/b:pull,push"')
    assert (c.scheme, c.realm, c.service) == ("bearer", "https://r.example/token?a=1,b=2", "crg")
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    assert parse_challenge(None).scheme == ""


def test_retry_after_seconds_and_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 25 Nov 2026 00:00:10 GMT", now=1795564800.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_upload_range_is_bytes_held():
    assert parse_range_end("0-99") == 100
    assert parse_range_end("bytes=0-0") == 0
    assert parse_range_end(None) is None
    assert parse_range_end("garbage") is None


def test_loopback_hosts():
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost:80") and is_loopback("[::1]:5000")
    assert not is_loopback("crg.apkg.io") and not is_loopback("10.0.0.1:5000")


def test_the_ca_file_wins_over_the_environments_bundle(monkeypatch, tmp_path):
    """requests lets REQUESTS_CA_BUNDLE override a session's verify: REGISTRY_CA_FILE must not lose to it."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    ca = str(tmp_path / "ca.crt")
    settings = CaSession(ca).merge_environment_settings("https://127.0.0.1:5000/v2/", {}, None, None, None)
    assert settings["verify"] == ca and settings["proxies"]["https"] == "http://127.0.0.1:3128"
    plain = CaSession(None).merge_environment_settings("https://127.0.0.1:5000/v2/", {}, None, None, None)
    assert plain["verify"] == "/etc/ssl/certs/ca-certificates.crt"


def test_positions_from_the_chain_in_any_order():
    diff_ids = [f"sha256:{i}" for i in range(4)]
    chain = ChainPositions(diff_ids)
    # v1 directories arrive in ID order, not layer order: c (pos 2), a (top), d (pos 1), b (bottom).
    assert chain.candidates("c") == frozenset(range(4))
    chain.add("c", parent="d", is_top=False)
    assert chain.candidates("c") == frozenset(range(4))
    chain.add("a", parent="c", is_top=True)
    assert chain.candidates("a") == {3}
    assert chain.candidates("c") == {2}  # the top's parent
    chain.add("d", parent="b", is_top=False)
    assert chain.candidates("d") == {1}
    chain.add("b", parent=None, is_top=False)
    assert chain.candidates("b") == {0}


def test_positions_learned_from_content():
    chain = ChainPositions(["sha256:a", "sha256:b", "sha256:c"])
    chain.add("x", parent="y", is_top=False)
    assert chain.candidates("x") == {0, 1, 2}
    chain.learn("x", "sha256:b")
    assert chain.candidates("x") == {1}
    chain.add("y", parent=None, is_top=False)
    assert chain.candidates("y") == {0}
    assert chain.candidates("z") == {2}  # the only place left


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_compression_is_reproducible_whatever_the_threads_and_write_sizes(threads):
    rng = random.Random(7)
    data = b"".join(rng.choice([os.urandom(4096), b"abc" * 5000, bytes(9000)]) for _ in range(900))
    reference = GzipLayer(lambda block: None, threads=1)
    reference.write(data)
    expected = reference.close()
    out: list[bytes] = []
    layer = GzipLayer(out.append, threads=threads)
    i = 0
    while i < len(data):
        n = rng.randint(1, 3 * 1024 * 1024)
        layer.write(data[i:i + n])
        i += n
    digest, size = layer.close()
    body = b"".join(out)
    assert (digest, size) == expected
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest() and size == len(body)
    assert gzip.decompress(body) == data
    assert body[4:8] == b"\0\0\0\0"  # mtime 0: no time in the bytes


def test_manifest_is_docker_schema2_with_the_config_as_given():
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_blob = Descriptor("sha256:" + hashlib.sha256(config).hexdigest(), len(config))
    body = docker_manifest(config_blob, [Descriptor("sha256:" + "a" * 64, 10)])
    doc = json.loads(body)
    assert doc["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert doc["config"] == {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                             "digest": "sha256:" + hashlib.sha256(config).hexdigest()}
    assert doc["layers"] == [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 10,
                              "digest": "sha256:" + "a" * 64}]
    assert body.startswith(b'{\n   "schemaVersion": 2,')


def test_engine_variables_defaults_and_bounds():
    s = parse_settings(BASE)
    assert (s.engine, s.compression_level, s.parallelism, s.chunk_size, s.cache_from) == \
        ("auto", 1, 3, 16 * 1024 * 1024, ())
    assert parse_settings({**BASE, "PUSH_ENGINE": "native"}).engine == "native"
    s = parse_settings({**BASE, "PUSH_ENGINE": "Docker", "CACHE_FROM": "main base-image:3 main",
                        "CHUNK_SIZE_MB": "8", "UPLOAD_PARALLELISM": "2", "COMPRESSION_LEVEL": "3"})
    assert (s.engine, s.cache_from, s.chunk_size, s.parallelism, s.compression_level) == \
        ("docker", (("app", "main"), ("base-image", "3")), 8 * 1024 * 1024, 2, 3)
    with pytest.raises(InvalidVariables) as exc:
        parse_settings({**BASE, "PUSH_ENGINE": "fast", "CHUNK_SIZE_MB": "0", "UPLOAD_PARALLELISM": "x",
                        "COMPRESSION_LEVEL": "9", "CACHE_FROM": "other-ws/app:1", "REGISTRY_CA_FILE": "/nope.pem"})
    text = "\n".join(exc.value.problems)
    for words in ("PUSH_ENGINE must be auto, native or docker", "CHUNK_SIZE_MB must be a whole number from 1 to 256",
                  "UPLOAD_PARALLELISM must be", "COMPRESSION_LEVEL must be a whole number from 0 to 3",
                  "CACHE_FROM entry 'other-ws/app:1'", "REGISTRY_CA_FILE '/nope.pem' is not a file"):
        assert words in text


def test_image_name_as_a_full_reference_must_agree_with_registry_and_workspace():
    s = parse_settings({**BASE, "IMAGE_NAME": "crg.apkg.io/acme/app:build"})
    assert (str(s.image), s.image.name, s.tags) == ("crg.apkg.io/acme/app:build", "app", ("build",))
    no_ws = {k: v for k, v in BASE.items() if k != "WORKSPACE"}
    assert parse_settings({**no_ws, "IMAGE_NAME": "crg.apkg.io/acme/app"}).workspace == "acme"
    with pytest.raises(InvalidVariables) as exc:
        parse_settings({**BASE, "IMAGE_NAME": "crg.apkg.io/other/app:1", "REGISTRY": "127.0.0.1:5000"})
    problem = exc.value.problems[0]
    assert "names registry crg.apkg.io and workspace other" in problem
    assert "registry 127.0.0.1:5000 (REGISTRY) and workspace acme (WORKSPACE)" in problem


def test_v1_id_of_a_lower_layer_as_docker_20_10_saves_it():
    # Taken from a real `docker save` (docker 20.10): layer 1 of an image, its json and directory name.
    diff_ids = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    doc = {"created": "1970-01-01T00:00:00Z", "container_config": {"Hostname": "", "Env": None}, "os": "linux",
           "parent": "ab" * 32}
    from pipe.sources.positions import chain_ids, legacy_v1_id
    chains = chain_ids(diff_ids)
    assert chains[0] == diff_ids[0]
    assert chains[1] == "sha256:" + hashlib.sha256(f"{diff_ids[0]} {diff_ids[1]}".encode()).hexdigest()
    v1 = legacy_v1_id(doc, chains[1])
    chain = ChainPositions(diff_ids + ["sha256:" + "3" * 64])
    chain.add(v1, parent="ab" * 32, is_top=False, doc={**doc, "id": v1})
    assert chain.candidates(v1) == {1}  # placed by its own name, before its parent was seen


def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _export(entries: list[tuple[str, bytes]], diff_ids: list[str], config: bytes):
    from pipe.sources.daemon_export import ExportStream
    from pipe.sources.image import LocalImage as DaemonImage
    image = DaemonImage("app:1", "sha256:" + hashlib.sha256(config).hexdigest(), tuple(diff_ids), "linux", "amd64",
                        "", 0)
    data = _tar(entries)
    return ExportStream(image, iter([data[i:i + 7000] for i in range(0, len(data), 7000)]))


def test_export_in_the_oci_layout_of_docker_25():
    layers = [os.urandom(3000), os.urandom(5000)]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    entries = sorted([(f"blobs/sha256/{d[7:]}", layer) for d, layer in zip(diff_ids, layers, strict=True)]
                     + [(f"blobs/sha256/{config_hex}", config), ("blobs/sha256/" + "f" * 64, b"{}"),
                        ("index.json", b"{}"), ("manifest.json", b"[]"), ("oci-layout", b"{}")])
    export = _export(entries, diff_ids, config)
    seen = {}
    for entry in export.layers():
        seen[min(entry.candidates)] = b"".join(bytes(part) for part in iter(lambda e=entry: e.read(1 << 20), b""))
    assert seen == {0: layers[0], 1: layers[1]}
    assert export.config == config


def test_a_layer_whose_position_is_uncertain_is_identified_by_its_hash_and_refused_when_it_matches_none():
    # docker 20.10's layout: a lower layer whose parent is not seen yet and whose v1 ID cannot be
    # recomputed may be either layer; its content decides, and content that is neither stops the push.
    from pipe.errors import PipeFailure
    layers = [os.urandom(3000), os.urandom(4000)]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    doc = json.dumps({"id": "a" * 64, "parent": "b" * 64}).encode()

    def entries(content: bytes) -> list[tuple[str, bytes]]:
        return [("a" * 64 + "/json", doc), ("a" * 64 + "/layer.tar", content)]

    export = _export(entries(layers[1]), diff_ids, b"{}")
    found = []
    with pytest.raises(PipeFailure, match="lacks 1 of its layers"):  # the other layer is not in this stream
        for entry in export.layers():
            assert entry.keys == set(diff_ids) and not entry.unhashed
            found.append(entry)
    assert found[0].diff_id == diff_ids[1]
    with pytest.raises(PipeFailure, match="hashes to"):
        for _ in _export(entries(layers[1][:-1] + b"x"), diff_ids, b"{}").layers():
            pass


def test_a_layer_whose_position_is_certain_is_not_hashed_again():
    # The daemon has checked it against its diff ID while exporting (moby's verified TarStream).
    import hashlib as h
    layer = os.urandom(3000)
    diff_id = "sha256:" + h.sha256(layer).hexdigest()
    config = b'{"rootfs":{}}'
    export = _export([(f"blobs/sha256/{diff_id[7:]}", layer), (f"blobs/sha256/{h.sha256(config).hexdigest()}", config)],
                     [diff_id], config)
    for entry in export.layers():
        assert entry.unhashed
        assert bytes(entry.read(1 << 20)) == layer
        assert entry.hasher.hexdigest() == h.sha256(b"").hexdigest()
    assert export.seen == {f"blobs/sha256/{diff_id[7:]}": diff_id}


def test_export_cut_short_is_refused():
    from pipe.errors import PipeFailure
    layer = os.urandom(30000)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    data = _tar([(f"blobs/sha256/{diff_id[7:]}", layer)])[:20000]
    from pipe.sources.daemon_export import ExportStream
    from pipe.sources.image import LocalImage as DaemonImage
    image = DaemonImage("app:1", "sha256:" + "0" * 64, (diff_id,), "linux", "amd64", "", 0)
    with pytest.raises(PipeFailure, match="ended early or is damaged"):
        for entry in ExportStream(image, iter([data])).layers():
            entry.read(1 << 20)


def test_abort_ends_the_compressor_threads_whatever_they_hold():
    # A push that fails mid-layer aborts the compressor with blocks in flight on every thread; isal's own
    # stop() then hung in about 7 of 10 such aborts here (a worker blocked on a full output queue).
    import threading

    from pipe.compression import BLOCK_SIZE
    data = os.urandom(BLOCK_SIZE)
    for i in range(20):
        gzip_layer = GzipLayer(lambda block: None, threads=2)
        for _ in range(3 + i % 5):
            gzip_layer.write(data)
        stopper = threading.Thread(target=gzip_layer.abort, daemon=True)
        stopper.start()
        stopper.join(15)
        assert not stopper.is_alive(), f"abort {i + 1} did not end"


class CountedReads:
    """A source of `data` that counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def read(self, n: int) -> bytes:
        piece = self.data[self.offset:self.offset + n]
        self.offset += len(piece)
        return piece


def test_a_streamed_chunk_reads_as_it_is_sent_and_a_resend_reads_only_the_rest():
    data = os.urandom(2 * PIECE + 1234)
    source = CountedReads(data + b"next chunk")
    chunk = StreamedChunk(source.read, len(data), "Layer 1 of 1")
    body = chunk[0:]
    assert len(body) == len(data) and source.offset == 0  # nothing read before the request sends it
    pieces = iter(body)
    first = next(pieces)
    assert bytes(first) == data[:PIECE] and source.offset == PIECE
    # The request dropped after one piece; the registry kept 1000 bytes: the rest goes again.
    rest = chunk[1000:]
    assert len(rest) == len(data) - 1000
    assert b"".join(bytes(p) for p in rest) == data[1000:]
    assert source.offset == len(data)  # the chunk's end, not a byte of the next one
    assert b"".join(bytes(p) for p in chunk[0:]) == data  # sent again from memory: nothing more read
    assert source.offset == len(data)
    assert b"".join(chunk.drain()) == data and chunk.pieces == []


def test_a_streamed_chunk_whose_source_ends_early_is_refused():
    chunk = StreamedChunk(CountedReads(b"x" * 10).read, 20, "Layer 2 of 3")
    with pytest.raises(PipeFailure, match="Layer 2 of 3 ended 10 bytes before its declared size"):
        b"".join(chunk[0:])
