"""The output file (pipe/outputs.py)."""
import json
import os

import pytest

from pipe import outputs
from pipe.outputs import OUTPUT_FILE_NAME, build_output, write_output
from pipe.references import Destination
from pipe.result import PushResult

DIGEST = "sha256:" + "ab" * 32


def sample():
    result = PushResult(engine="docker", source="daemon", source_image="app:dev", digest=DIGEST,
                        tags=("latest", "1.0", "v1"), platforms=("linux/amd64",), pushed_bytes=1234, layers_uploaded=1,
                        layers_skipped=2, previous=(("latest", "sha256:" + "cd" * 32), ("1.0", None), ("v1", DIGEST)))
    return build_output(Destination("crg.apkg.io", "acme", "app"), result, 2.34567)


def test_schema():
    data = sample()
    assert list(data) == ["registry", "workspace", "image", "source_image", "digest", "tags", "references",
                          "reference_by_digest", "pushed_bytes", "duration_seconds", "engine", "layers_uploaded",
                          "layers_mounted", "layers_skipped", "source", "platforms", "index_digest", "manifests",
                          "previous_digests", "tags_written", "tags_unchanged"]
    assert data["duration_seconds"] == 2.346
    assert data["previous_digests"] == {"latest": "sha256:" + "cd" * 32, "1.0": None, "v1": DIGEST}
    assert data["references"] == ["crg.apkg.io/acme/app:latest", "crg.apkg.io/acme/app:1.0",
                                  "crg.apkg.io/acme/app:v1"]
    # v1 already held the digest: the push did not write it.
    assert (data["tags_written"], data["tags_unchanged"]) == (["latest", "1.0"], ["v1"])
    assert data["reference_by_digest"] == f"crg.apkg.io/acme/app@{DIGEST}"


def test_write_creates_the_directory_and_the_file(tmp_path):
    target = write_output(tmp_path / "a" / "b", sample())
    assert target == tmp_path / "a" / "b" / OUTPUT_FILE_NAME
    assert OUTPUT_FILE_NAME == "bbc-packages-push-container-image.json"
    assert json.loads(target.read_text()) == sample()
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == [OUTPUT_FILE_NAME]  # no temporary file left


def test_write_replaces_atomically(tmp_path):
    write_output(tmp_path, {"old": True})
    write_output(tmp_path, sample())
    assert json.loads((tmp_path / OUTPUT_FILE_NAME).read_text())["digest"] == DIGEST


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    write_output(tmp_path, {"old": True})

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(outputs.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_output(tmp_path, sample())
    assert json.loads((tmp_path / OUTPUT_FILE_NAME).read_text()) == {"old": True}
    assert os.listdir(tmp_path) == [OUTPUT_FILE_NAME]
