"""Realistic test images built offline: random and real-file layers, and images sharing all but the top layer."""
from __future__ import annotations

import gzip
import json
import subprocess

from harness.layered_images import FilesLayer, RandomLayer, inspect_image


def _layer_bytes(ref: str, index: int) -> bytes:
    """One layer tar of `ref`, from `docker save` (the archive is small in these tests)."""
    import io
    import tarfile
    saved = subprocess.run(["docker", "save", ref], capture_output=True, timeout=120, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return tar.extractfile(manifest[0]["Layers"][index]).read()


def test_random_and_file_layers_and_an_image_on_a_base(layered_image_factory):
    image = layered_image_factory([RandomLayer(1 << 20), FilesLayer(2 << 20, slice=0), FilesLayer(2 << 20, slice=1)])
    assert len(image.diff_ids) == 3 == len(set(image.diff_ids))
    inspected = inspect_image(image.ref)
    assert inspected.image_id == image.image_id and inspected.diff_ids == image.diff_ids
    for size in image.layer_sizes[1:]:
        assert 0.9 * (2 << 20) <= size <= 2 << 20

    random_layer, files_layer = _layer_bytes(image.ref, 0), _layer_bytes(image.ref, 1)
    assert len(gzip.compress(random_layer, 1)) > 0.99 * len(random_layer)  # incompressible
    assert len(gzip.compress(files_layer, 1)) < 0.8 * len(files_layer)     # real files compress
    assert b"usr/" in files_layer

    again = layered_image_factory([FilesLayer(2 << 20, slice=0)])
    assert again.diff_ids[0] not in image.diff_ids  # unique by default: a nonce file
    shared = layered_image_factory([FilesLayer(2 << 20, slice=0, unique=False)])
    shared_again = layered_image_factory([FilesLayer(2 << 20, slice=0, unique=False)])
    assert shared.diff_ids == shared_again.diff_ids and shared.image_id != shared_again.image_id

    top = layered_image_factory.on_base(image.ref, 100_000)
    assert top.diff_ids[:3] == image.diff_ids and len(top.diff_ids) == 4
    assert top.image_id != image.image_id
