"""The OCI layout `make demo` writes without a daemon (demo/layout.py): complete, consistent, reproducible."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from demo.layout import write_layout
from pipe.oci import OCI_MANIFEST, REF_NAME

FILES = {"hello.txt": b"hello\n", "data.bin": bytes(range(256)) * 64}


def blob(layout_path, digest: str) -> bytes:
    data = (layout_path / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_the_layout_names_every_blob_it_holds_and_each_hashes_to_its_name(tmp_path):
    layout = write_layout(tmp_path / "oci", FILES, tag="1.0")
    assert json.loads((layout.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout.path / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == layout.manifest.digest and entry["annotations"][REF_NAME] == "1.0"
    manifest = json.loads(blob(layout.path, layout.manifest.digest))
    assert manifest["mediaType"] == OCI_MANIFEST
    named = [manifest["config"], *manifest["layers"]]
    assert [(d["digest"], d["size"]) for d in named] == [(b.digest, b.size) for b in layout.blobs]
    config = json.loads(blob(layout.path, manifest["config"]["digest"]))
    tar = gzip.decompress(blob(layout.path, manifest["layers"][0]["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        assert {m.name: t.extractfile(m).read() for m in t.getmembers()} == FILES
    stored = {p.name for p in (layout.path / "blobs" / "sha256").iterdir()}
    assert stored == {d.split(":")[1] for d in [layout.manifest.digest, *(b.digest for b in layout.blobs)]}


def test_the_same_files_make_the_same_digest_and_other_files_another(tmp_path):
    first = write_layout(tmp_path / "a", FILES)
    again = write_layout(tmp_path / "b", dict(reversed(FILES.items())))
    other = write_layout(tmp_path / "c", {**FILES, "hello.txt": b"bye\n"})
    assert first.manifest.digest == again.manifest.digest != other.manifest.digest
