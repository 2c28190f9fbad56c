"""Online garbage collection of a workspace's blob store.

Triggered by a same-tag push, a tag delete and an image delete, and run in the background:
the request that triggers it does not wait. Safety against concurrent pushes:
- nothing written, mounted or confirmed by a HEAD within the grace period is a candidate;
- candidates are chosen and marked `deleting` in one transaction that re-checks references,
  so a manifest stored in the same instant either sees the blob or the blob is not chosen;
- files are removed under the workspace lock that a finishing upload also takes, and only
  for rows still marked, since a re-upload of the same content un-marks its row;
- a blob marked `deleting` is reported absent, so clients upload it again rather than
  reference what is about to disappear.
This module decides when to collect and in which order; each step is an operation of the store
(`Store.sweep_manifests`, `mark_unreferenced_blobs`, `delete_marked_blobs`, `remove_orphan_files`,
`oldest_unreferenced`), which takes the workspace lock where files and rows change together.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from .store import Store

log = logging.getLogger("registry.gc")
BATCH = 64
# Abandoned manifests and uploads are also swept periodically, not only on triggers.
PERIODIC_SECONDS = 600


@dataclass
class CollectionResult:
    workspace: str
    started_at: float
    finished_at: float = 0.0
    freed_bytes: int = 0
    blobs_deleted: int = 0
    manifests_deleted: int = 0
    orphan_files_deleted: int = 0
    deferred: int = 0  # unreferenced but still inside the grace period

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Collector:
    store: Store
    last: dict[str, CollectionResult] = field(default_factory=dict)
    running: dict[str, asyncio.Task] = field(default_factory=dict)
    again: set[str] = field(default_factory=set)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    next_sweep: float | None = None  # wall-clock time of the next periodic sweep

    def next_run(self, workspace: str) -> float | None:
        """When the next collection of the workspace is due (wall clock): a timer set by the
        last run for what waits out its grace period, or the periodic sweep."""
        due = [self.next_sweep] if self.next_sweep is not None else []
        timer, now = self.timers.get(workspace), asyncio.get_running_loop().time()
        if timer is not None and not timer.cancelled() and timer.when() > now:  # a fired timer stays in the dict
            due.append(time.time() + timer.when() - now)
        return min(due, default=None)

    def schedule(self, workspace: str, delay: float = 0.0) -> None:
        """Ask for a collection; one runs at a time per workspace and a request during a run queues one more."""
        if delay > 0:
            loop = asyncio.get_running_loop()
            old = self.timers.pop(workspace, None)
            if old is not None:
                old.cancel()
            self.timers[workspace] = loop.call_later(delay, self.schedule, workspace)
            return
        if workspace in self.running:
            self.again.add(workspace)
            return
        self.running[workspace] = asyncio.get_running_loop().create_task(self._run(workspace))

    async def _run(self, workspace: str) -> None:
        try:
            while True:
                self.again.discard(workspace)
                try:
                    await self.collect(workspace)
                except Exception:
                    log.exception("collection of %s failed", workspace)
                if workspace not in self.again:
                    break
        finally:
            self.running.pop(workspace, None)

    async def wait_idle(self, workspace: str) -> None:
        task = self.running.get(workspace)
        if task is not None:
            await asyncio.shield(task)

    async def collect(self, workspace: str) -> CollectionResult:
        store = self.store
        result = CollectionResult(workspace, time.time())
        cutoff = time.time() - store.config.grace_seconds
        result.manifests_deleted = await store.sweep_manifests(workspace, cutoff)
        marked, result.deferred = await store.mark_unreferenced_blobs(workspace, cutoff)
        for i in range(0, len(marked), BATCH):
            batch = marked[i:i + BATCH]
            doomed = await store.delete_marked_blobs(workspace, [d for d, _ in batch])
            sizes = dict(batch)
            result.blobs_deleted += len(doomed)
            result.freed_bytes += sum(sizes[d] for d in doomed)
        result.orphan_files_deleted = await store.remove_orphan_files(workspace, cutoff)
        result.finished_at = time.time()
        self.last[workspace] = result
        self.runs[workspace] = self.runs.get(workspace, 0) + 1
        if result.blobs_deleted or result.manifests_deleted:
            log.info("collected %s: %d blobs (%d bytes), %d manifests", workspace,
                     result.blobs_deleted, result.freed_bytes, result.manifests_deleted)
        oldest = await store.oldest_unreferenced(workspace)
        if oldest is not None:
            # Something is waiting out its grace period: come back when it has.
            self.schedule(workspace, max(1.0, oldest + store.config.grace_seconds - time.time() + 0.5))
        return result

    async def periodic(self) -> None:
        """Sweep every workspace now and then, and expire abandoned upload sessions."""
        interval = min(PERIODIC_SECONDS, max(5.0, self.store.config.upload_timeout_seconds / 4))
        elapsed = 0.0
        while True:
            self.next_sweep = time.time() + PERIODIC_SECONDS - elapsed
            await asyncio.sleep(interval)
            self.store.expire_uploads()
            elapsed += interval
            if elapsed >= PERIODIC_SECONDS:
                elapsed = 0.0
                for workspace in self.store.config.workspaces:
                    self.schedule(workspace)
