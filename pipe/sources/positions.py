"""Which layer of the image a `docker save` entry is, as far as the stream has told so far (pure).

docker 20.10 writes each layer into a directory named by a legacy v1 ID, in the order of those IDs,
not of the layers; each directory's `json` (read before its `layer.tar`) names its parent's v1 ID,
and only the top layer's carries the image's `config`. So a layer's position is known when the
chain links it to the bottom (no parent) or to the top, or when a layer's content has been hashed
(its diff ID). Until then it may be any position not yet accounted for: `candidates` says which.

Most of the time the directory's own name settles it: docker derives the v1 ID of a lower layer from
its `json` (without `id`, `parent` and `os`) plus the layer's chain ID and the parent's v1 ID, as the
digest of that object with its keys sorted. Recomputing it for each open position finds the one
that matches; a match is a sha256 equality, so it cannot be wrong, only absent (another docker).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from ..oci import digest_of


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The layer chain IDs: the first diff ID, then sha256 of `<previous chain ID> <diff ID>`."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else digest_of(f"{out[-1]} {diff_id}".encode()))
    return out


def legacy_v1_id(doc: dict[str, Any], chain_id: str) -> str:
    """The v1 ID docker's `save` gives a lower layer whose `json` is `doc`, were it at `chain_id`."""
    fields = {k: v for k, v in doc.items() if k not in ("id", "parent", "os")}
    fields["layer_id"] = chain_id
    if doc.get("parent"):
        fields["parent"] = "sha256:" + str(doc["parent"])
    body = "{" + ",".join(json.dumps(k) + ":" + json.dumps(fields[k], separators=(",", ":"), ensure_ascii=False)
                          for k in sorted(fields)) + "}"
    return hashlib.sha256(body.encode()).hexdigest()


class ChainPositions:
    def __init__(self, diff_ids: list[str]) -> None:
        self.diff_ids = diff_ids
        self.count = len(diff_ids)
        self.chains = chain_ids(diff_ids)
        self.parent: dict[str, str | None] = {}
        self.position: dict[str, int] = {}

    def add(self, v1_id: str, parent: str | None, is_top: bool, doc: dict[str, Any] | None = None) -> None:
        self.parent[v1_id] = parent
        if is_top and self.count:
            self._place(v1_id, self.count - 1)
        elif parent is None:
            self._place(v1_id, 0)
        elif doc is not None:
            matches = [p for p in self.candidates(v1_id) if legacy_v1_id(doc, self.chains[p]) == v1_id]
            if len(matches) == 1:
                self._place(v1_id, matches[0])
        self._propagate()

    def learn(self, v1_id: str, diff_id: str) -> None:
        """The entry's content hashed to `diff_id`: place it if that names one position."""
        if v1_id in self.position:
            return
        options = [p for p in self.candidates(v1_id) if self.diff_ids[p] == diff_id]
        if len(options) == 1:
            self._place(v1_id, options[0])
            self._propagate()

    def _place(self, v1_id: str, position: int) -> None:
        if position not in self.position.values():
            self.position[v1_id] = position

    def _propagate(self) -> None:
        changed = True
        while changed:
            changed = False
            for v1_id, parent in self.parent.items():
                if v1_id not in self.position and parent in self.position:
                    self._place(v1_id, self.position[parent] + 1)
                    changed = v1_id in self.position
                if parent is not None and v1_id in self.position and parent not in self.position \
                        and parent in self.parent:
                    self._place(parent, self.position[v1_id] - 1)
                    changed = changed or parent in self.position

    def candidates(self, v1_id: str) -> frozenset[int]:
        if v1_id in self.position:
            return frozenset({self.position[v1_id]})
        taken = set(self.position.values())
        return frozenset(p for p in range(self.count) if p not in taken)
