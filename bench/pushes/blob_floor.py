"""The floor of a registry-to-registry copy (`python -m bench.pushes.blob_floor SPEC.json`): each blob one GET
streamed into one monolithic PUT, `parallelism` at once, no HEAD, no digest check, no retry, no manifest.
SPEC: {"source": {"base", "repository", "headers"}, "dest": {...}, "blobs": [[digest, size], ...],
"parallelism": n}. Prints {"bytes": n, "blobs": k}."""
from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin

import requests

PIECE = 1024**2
TIMEOUT = 300.0


def _one(session: requests.Session, spec: dict, digest: str, size: int) -> int:
    src, dst = spec["source"], spec["dest"]
    got = session.get(f"{src['base']}/v2/{src['repository']}/blobs/{digest}", headers=src["headers"], stream=True,
                      timeout=TIMEOUT)
    got.raise_for_status()
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for piece in got.raw.stream(PIECE, decode_content=False):
            sent += len(piece)
            yield piece

    start = session.post(f"{dst['base']}/v2/{dst['repository']}/blobs/uploads/", headers=dst["headers"],
                         timeout=TIMEOUT)
    start.raise_for_status()
    location = urljoin(dst["base"] + "/", start.headers["Location"])
    put = session.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", data=body(), timeout=TIMEOUT,
                      headers={**dst["headers"], "Content-Type": "application/octet-stream"})
    put.raise_for_status()
    got.close()
    if sent != size:
        raise RuntimeError(f"{digest}: streamed {sent} bytes, expected {size}")
    return sent


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    sessions: dict[int, requests.Session] = {}

    def copy(blob: list) -> int:
        session = sessions.setdefault(threading.get_ident(), requests.Session())  # one keep-alive pool a thread
        return _one(session, spec, blob[0], int(blob[1]))

    with ThreadPoolExecutor(int(spec["parallelism"])) as pool:
        sizes = list(pool.map(copy, spec["blobs"]))
    print(json.dumps({"bytes": sum(sizes), "blobs": len(sizes)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
