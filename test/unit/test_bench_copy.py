"""The copy benchmark's own parts that its figures rest on: the OCI layouts it writes (valid, and no blob
shared between two images, so purging one never touches the other) and the targets its report judges."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from bench.pushes import copy_images
from bench.report import copy as copy_report
from bench.report.format import chart_line
from bench.stats import summarize_runs

KIB = 1024


def _blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.partition(":")[2]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_index_layout_is_valid_and_each_layer_matches_its_diff_id(tmp_path: Path) -> None:
    image = copy_images.write("index", tmp_path / "idx", 4, 64 * KIB)
    layout = image.layout
    assert (layout / "oci-layout").exists()
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    assert top["digest"] == image.digest and top["mediaType"] == copy_images.OCI_INDEX
    index = json.loads(_blob(layout, image.digest))
    platforms = [m["platform"]["architecture"] for m in index["manifests"]]
    assert platforms == ["amd64", "arm64"]
    for entry in index["manifests"]:
        manifest = json.loads(_blob(layout, entry["digest"]))
        config = json.loads(_blob(layout, manifest["config"]["digest"]))
        assert len(manifest["layers"]) == 2
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            data = _blob(layout, layer["digest"])
            assert layer["size"] == len(data) and data[:2] == b"\x1f\x8b"
            tar_bytes = gzip.decompress(data)
            assert "sha256:" + hashlib.sha256(tar_bytes).hexdigest() == diff_id
            with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
                sizes = {m.name: m.size for m in tar.getmembers()}
            assert 64 * KIB in sizes.values() and "bench-nonce" in sizes
    assert image.compressed_bytes == sum(b.size for b in image.blobs)
    assert len(image.blobs) == 4 + 2  # layers and configs


def test_two_images_share_no_blob(tmp_path: Path) -> None:
    first = copy_images.write("image", tmp_path / "a", 2, 32 * KIB)
    second = copy_images.write("image", tmp_path / "b", 2, 32 * KIB)
    assert not set(first.digests) & set(second.digests)


def _runs(pipe: list[float], skopeo: list[float], floor: list[float], sent: list[int]) -> dict:
    case = "reference-embedded image"
    runs = {case: {
        "pipe": [{"seconds": s, "output_pushed_bytes": b, "peak_rss_mb": 100.0}
                 for s, b in zip(pipe, sent, strict=True)],
        "skopeo": [{"seconds": s} for s in skopeo],
        "floor": [{"seconds": s} for s in floor],
        "rerun": [{"seconds": 0.6, "output_pushed_bytes": 0, "peak_rss_mb": 40.0}],
    }}
    return {"summary": summarize_runs(runs, ("seconds",)), "runs": runs,
            "images": {case.replace(" ", "-"): {"compressed_bytes": 1000}}}


def test_targets_judge_the_ratios_and_the_bytes_sent() -> None:
    got = {t["figure"]: t for t in copy_report.targets(_runs([2.0, 3.0, 4.0], [3.0, 3.0, 3.0], [2.0, 2.0, 2.0],
                                                               [1000, 1000, 999]))}
    name = copy_report.case_name("reference-embedded image")
    assert name == "distribution -> emulator, image, cold"
    assert got[f"{name}: pipe / `skopeo copy --all`"]["value"] == 1.0
    assert got[f"{name}: pipe / `skopeo copy --all`"]["met"] is True
    assert got[f"{name}: pipe / GET -> PUT loop (floor)"]["value"] == 1.5
    assert got[f"{name}: pipe / GET -> PUT loop (floor)"]["met"] is False
    assert got[f"{name}: pipe sent, MB (every run)"]["met"] is False  # one run sent a byte less
    assert got[f"{name}: re-run, bytes sent (every run)"]["met"] is True
    assert got["pipe peak RSS, worst run, MB"]["value"] == 100.0


def test_a_chart_that_fails_to_draw_is_one_line_and_a_failed_run(tmp_path):
    def broken() -> Path | None:
        raise ValueError("no data")

    assert chart_line("copy chart", broken, tmp_path / "s.png") == ("\n**copy chart failed**: ValueError: no data\n",
                                                                   True)
    drawn = tmp_path / "c.png"
    drawn.write_bytes(b"png")
    assert chart_line("chart", lambda: drawn, tmp_path / "docs" / "s.png") == (
        f"\nchart: {drawn} (copied to {tmp_path / 'docs' / 's.png'})\n", False)
    assert (tmp_path / "docs" / "s.png").read_bytes() == b"png"
    assert chart_line("chart", lambda: drawn, None) == (f"\nchart: {drawn}\n", False)
    assert chart_line("chart", lambda: None, tmp_path / "s.png") == ("", False)
