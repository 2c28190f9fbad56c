"""The blobs of a source registry as the engine reads them: one entry per distinct blob, each opened
only when the engine reads it (a blob the destination holds is never fetched), several at once,
streamed and hashed on the way, never held whole. A stream that drops goes on from the byte it reached with a `Range`
request, within the budget `retry.CHUNK_RESUMES`; the engine checks the digest before the upload ends.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

import requests
import urllib3.exceptions

from ..client.api import RegistryClient
from ..errors import PipeFailure, RegistryFailure
from ..oci import Descriptor
from ..retry import CHUNK_RESUMES, Attempts, RetryPolicy, retry_loop
from .image import LayerEntry

log = logging.getLogger(__name__)

# What a dropped stream raises from `response.raw.read`.
DROPPED = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


class BlobStream:
    """`read(n)` over one blob of the source, resumed after a drop; at most the blob's size is read."""

    def __init__(self, client: RegistryClient, digest: str, size: int, label: str,
                 describe: Callable[[RegistryFailure], str], policy: RetryPolicy = CHUNK_RESUMES) -> None:
        self.client = client
        self.digest = digest
        self.size = size
        self.label = label
        self.describe = describe
        self.policy = policy
        self.offset = 0
        self.response: Any = None
        self.spent = Attempts()  # one budget for the whole blob, across reads

    def read(self, n: int) -> bytes:
        if self.offset >= self.size:
            self.close()
            return b""
        data = retry_loop(lambda: self._read(n), self.policy, retry_on=DROPPED, waiting=self._waiting,
                        exhausted=self._exhausted, sleep=self.client.sleep, spent=self.spent)
        self.offset += len(data)
        return data

    def _read(self, n: int) -> bytes:
        try:
            if self.response is None:
                self.response = self.client.open_blob(self.digest, self.offset)
            data = self.response.raw.read(min(n, self.size - self.offset))
            if not data:
                raise ConnectionError(f"the stream ended at byte {self.offset} of {self.size}")
        except RegistryFailure as exc:
            self.close()
            if exc.status == 404:
                raise PipeFailure(f"The source registry {self.client.registry} has no {self.label} "
                                  f"({self.digest[:19]}) that its manifest names: the source image is "
                                  "incomplete (nothing was tagged)") from exc
            raise PipeFailure(self.describe(exc)) from exc
        except DROPPED:
            self.close()
            raise
        return data

    def _waiting(self, exc: BaseException, wait: float, attempt: int) -> None:
        log.warning("Reading %s from %s dropped at byte %d (%s); resuming in %.0f s", self.label,
                    self.client.registry, self.offset, exc, wait)

    def _exhausted(self, exc: BaseException, attempts: int) -> None:
        raise PipeFailure(f"Reading {self.label} from the source registry {self.client.registry} "
                          f"failed {attempts} times (last: {exc}); try again later") from exc

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None


class RegistryBlobs:
    """The LayerPass of a registry source: every config is known before the sweep. `blobs`: each distinct
    layer blob, with the label it has in messages."""

    config: bytes | None = None
    parallel_reads = True  # each blob is a GET of its own

    def __init__(self, client: RegistryClient, blobs: list[tuple[Descriptor, str]],
                 describe: Callable[[RegistryFailure], str]) -> None:
        self.client = client
        self.describe = describe
        self.blobs = blobs

    def layers(self) -> Iterator[LayerEntry]:
        for blob, label in self.blobs:
            stream = BlobStream(self.client, blob.digest, blob.size, label, self.describe)
            # The stream closes itself at its end or on a failure; the engine may read several at once.
            yield LayerEntry(blob.digest, blob.size, frozenset({blob.digest}), label, stream.read, stored=blob,
                             media_type=blob.media_type)
