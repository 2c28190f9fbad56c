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
    pipe_reps: int = 3
    pipe_layers: tuple[int, ...] = (64 * MiB,) * 4
    deadline_s: float = 20 * 60  # phases stop starting repetitions after this

    def data_sizes(self) -> list[int]:
        return [self.blob, *self.memory_sizes, self.small_clients * self.small_blobs * self.small_size + self.small_size]


FULL = Settings()
QUICK = Settings(
    reps=1, blob=64 * MiB, range_bytes=16 * MiB, memory_sizes=(32 * MiB, 128 * MiB), memory_reps=1,
    small_clients=4, small_blobs=8, pipe_reps=1, pipe_layers=(4 * MiB,) * 4, deadline_s=5 * 60,
)
