"""How much each measurement does: the full run (`make bench`) and a quick smoke run."""
from __future__ import annotations

from dataclasses import dataclass

MiB = 1024**2
GiB = 1024**3


@dataclass(frozen=True)
class Settings:
    reps: int = 5
    blob: int = 1 * GiB
    chunk: int = 8 * MiB
    range_bytes: int = 256 * MiB
    memory_sizes: tuple[int, ...] = (256 * MiB, 2 * GiB)
    memory_reps: int = 2
    small_clients: int = 16
    small_blobs: int = 64
    small_size: int = 1 * MiB
    deadline_s: float = 20 * 60  # phases stop starting repetitions after this
    # The engine phase: images of engine_layers x engine_layer_bytes, per kind.
    engine_kinds: tuple[str, ...] = ("usr", "random")
    engine_layers: int = 8
    engine_layer_bytes: int = 128 * MiB
    engine_reps: int = 2
    # The daemons pushed from (harness/engines.py): the default one, and Debian 13's Docker 26 with each image store.
    engine_daemons: tuple[str, ...] = ("20.10", "26-classic", "26-containerd")
    engine_deadline_s: float = 150 * 60  # its own: it starts after the other phases
    # The archive phase: the pipe from IMAGE_ARCHIVE against `skopeo copy`, a real-files image of
    # archive_layers x archive_layer_bytes (the engine phase's 1 GiB in 8 layers by default).
    archive_layers: int = 8
    archive_layer_bytes: int = 128 * MiB
    archive_reps: int = 3  # three, so the median is a measured run, not the mean of two
    archive_deadline_s: float = 20 * 60
    image_reps: int = 7  # the image phase: the pipe image with and without bytecode
    # The copy phase: SOURCE_IMAGE against `skopeo copy` and the GET -> PUT floor, images of
    # copy_layers x copy_layer_bytes (a promotion also at copy_layers x copy_small_layer_bytes).
    copy_layers: int = 8
    copy_layer_bytes: int = 128 * MiB
    copy_small_layer_bytes: int = 8 * MiB
    copy_reps: int = 3
    copy_directions: tuple[str, ...] = ("reference-embedded", "embedded-reference")  # <source>-<destination>
    copy_deadline_s: float = 30 * 60

    def data_sizes(self) -> list[int]:
        small = self.small_clients * self.small_blobs * self.small_size + self.small_size
        return [self.blob, *self.memory_sizes, small]


FULL = Settings()
QUICK = Settings(
    reps=1, blob=64 * MiB, range_bytes=16 * MiB, memory_sizes=(32 * MiB, 128 * MiB), memory_reps=1,
    small_clients=4, small_blobs=8, deadline_s=5 * 60,
    engine_layer_bytes=8 * MiB, engine_reps=1, engine_deadline_s=20 * 60,
    archive_layer_bytes=8 * MiB, archive_reps=1, archive_deadline_s=5 * 60,
    image_reps=1,
    copy_layer_bytes=8 * MiB, copy_small_layer_bytes=1 * MiB, copy_reps=1, copy_deadline_s=10 * 60,
)
