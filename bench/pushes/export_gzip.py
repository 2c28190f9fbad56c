"""The floor of any push that compresses what it reads from the daemon (`python -m bench.pushes.export_gzip IMAGE`,
its own process, like the pipe): the export read with the pipe's reader, each layer compressed by the pipe's
compressor, the output thrown away, nothing sent. Prints one JSON line: first byte's time, bytes read and compressed."""
from __future__ import annotations

import json
import sys
import time

import docker

from pipe.compression import GzipLayer, return_big_buffers_to_the_kernel
from pipe.sources import daemon_export

READ_SIZE = 1024 * 1024


def main(reference: str) -> dict:
    return_big_buffers_to_the_kernel()  # as the pipe does: the same allocator behaviour
    client = docker.from_env(timeout=600)
    image = daemon_export.inspect(client, reference)
    t0 = time.monotonic()
    stream = daemon_export.export(client, image)
    first: list[float] = []
    chunks = stream.chunks

    def timed():
        for chunk in chunks:
            if not first:
                first.append(time.monotonic() - t0)
            yield chunk

    stream.chunks = timed()
    compressed = 0
    read = 0
    for entry in stream.layers():
        sink = GzipLayer(lambda block: None)
        while True:
            data = entry.read(READ_SIZE)
            if not len(data):
                break
            read += len(data)
            sink.write(data)
        compressed += sink.close()[1]
    return {"first_byte_s": round(first[0], 3) if first else None, "export_s": round(time.monotonic() - t0, 3),
            "layer_bytes": read, "compressed_bytes": compressed}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
