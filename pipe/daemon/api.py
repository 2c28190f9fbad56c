"""Everything the pipe asks of the Docker daemon: connect, which engine and image store it is, find the
image, tag, push, untag.

Registry errors come back as `RegistryFailure` (classified, not yet worded); problems with the daemon
itself as `PipeFailure` with the final message. The push goes through the daemon, exactly as
`docker push` would, so layers are compressed and uploaded the way the registry expects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, ImageNotFound
from docker.models.images import Image

from ..errors import PipeFailure, RegistryFailure, daemon_lost_message, image_missing_message, no_daemon_message
from ..scrubbing import Secret
from .push_stream import PushOutcome, Record, read_push_stream
from .words import classify

# Finding the daemon must be quick; a push may legitimately stay silent for a while (a slow
# registry, the daemon waiting between its own retries), so later calls get a long timeout.
CONNECT_TIMEOUT = 30
OPERATION_TIMEOUT = 900

# A stream cut mid-way (the daemon gone while it streams a push or an export) surfaces from urllib3 as
# itself (ProtocolError: IncompleteRead), not as a requests exception: both mean the daemon was lost.
DaemonErrors = (DockerException, requests.RequestException)
StreamErrors = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def connect(environ: Mapping[str, str]) -> docker.DockerClient:
    """A client for DOCKER_HOST when set, else the local socket: the way docker itself decides."""
    try:
        client = docker.from_env(environment=dict(environ), timeout=CONNECT_TIMEOUT)
        client.ping()
    except DaemonErrors as exc:
        raise PipeFailure(no_daemon_message(environ.get("DOCKER_HOST") or None, str(exc))) from exc
    client.api.timeout = OPERATION_TIMEOUT
    return client


CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter"  # `driver-type` of the containerd image store


@dataclass(frozen=True)
class DaemonInfo:
    """The engine behind DOCKER_HOST, as it says itself."""

    version: str
    api_version: str
    containerd_store: bool  # the containerd image store (compressed layers, image ID = manifest digest)

    @property
    def store(self) -> str:
        return "the containerd image store" if self.containerd_store else "the classic image store"

    def __str__(self) -> str:
        return f"Docker {self.version} (API {self.api_version}), {self.store}"


def uses_containerd_store(info: Mapping[str, Any]) -> bool:
    """Whether `GET /info` describes the containerd image store: its `DriverStatus` names the snapshotter
    (`[["driver-type", "io.containerd.snapshotter.v1"]]`); the classic graph drivers never do."""
    status = info.get("DriverStatus") or []
    return any(isinstance(pair, (list, tuple)) and len(pair) == 2 and str(pair[0]) == "driver-type"
               and str(pair[1]).startswith(CONTAINERD_SNAPSHOTTER) for pair in status)


def describe(client: docker.DockerClient) -> DaemonInfo:
    """Detected, never configured: `GET /info` for the store; the API version the client settled on
    (the SDK asks the daemon for its own, so it never speaks a newer one than the daemon offers)."""
    try:
        info = client.info()
    except APIError as exc:
        raise PipeFailure(f"The Docker daemon did not describe itself (GET /info): {exc.explanation or exc}") from exc
    except requests.RequestException as exc:
        raise PipeFailure(daemon_lost_message("asking the Docker daemon what it is", str(exc))) from exc
    return DaemonInfo(str(info.get("ServerVersion") or "?"), str(client.api.api_version),
                      uses_containerd_store(info))


def find_image(client: docker.DockerClient, reference: str) -> Image:
    try:
        return client.images.get(reference)
    except ImageNotFound as exc:
        raise PipeFailure(image_missing_message(reference)) from exc
    except APIError as exc:
        raise PipeFailure(f"Cannot inspect the local image {reference}: {exc.explanation or exc}") from exc
    except requests.RequestException as exc:
        raise PipeFailure(daemon_lost_message(f"looking up {reference}", str(exc))) from exc


def push(
    client: docker.DockerClient,
    repository: str,
    tag: str,
    username: str,
    token: Secret,
    on_record: Callable[[Record], None] | None = None,
) -> PushOutcome:
    """Push `repository:tag`, reading the whole stream; raise RegistryFailure on any error in it."""
    reference = f"{repository}:{tag}"
    auth = {"username": username, "password": token.reveal()}
    try:
        stream = client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth)
        outcome = read_push_stream(stream, on_record=on_record)
    except APIError as exc:
        raise RegistryFailure(classify(str(exc.explanation or exc), exc.status_code)) from exc
    except StreamErrors as exc:
        raise PipeFailure(daemon_lost_message(f"pushing {reference}", str(exc))) from exc
    if outcome.error is not None:
        raise RegistryFailure(classify(outcome.error))
    if outcome.digest is None:
        raise PipeFailure(f"Push of {reference} failed: the Docker daemon ended the push without reporting a digest")
    return outcome


class TemporaryTags:
    """The tags the pipe adds to the local image, and undoing exactly those.

    A tag that already pointed at the image is left alone; one that pointed at another image
    is moved for the push and moved back afterwards. The source image is never touched.
    """

    def __init__(self, client: docker.DockerClient, warn: Callable[[str], None]) -> None:
        self.client = client
        self.warn = warn
        self.created: list[tuple[str, str, str | None]] = []  # repository, tag, previous image id

    def _image_id(self, reference: str) -> str | None:
        try:
            return self.client.api.inspect_image(reference)["Id"]
        except ImageNotFound:
            return None

    def add(self, image: Image, repository: str, tag: str) -> None:
        reference = f"{repository}:{tag}"
        try:
            previous = self._image_id(reference)
            if previous == image.id:
                return
            self.client.api.tag(image.id, repository, tag, force=True)
        except APIError as exc:
            raise PipeFailure(f"Cannot tag {image.tags[0] if image.tags else image.id} as {reference}: "
                              f"{exc.explanation or exc}") from exc
        except requests.RequestException as exc:
            raise PipeFailure(daemon_lost_message(f"tagging {reference}", str(exc))) from exc
        self.created.append((repository, tag, previous))

    def remove(self) -> None:
        """Best effort: a leftover tag is worth a warning, never a failed pipe."""
        while self.created:
            repository, tag, previous = self.created.pop()
            reference = f"{repository}:{tag}"
            try:
                if previous is not None:
                    self.client.api.tag(previous, repository, tag, force=True)
                else:
                    self.client.api.remove_image(reference, noprune=True)
            except DaemonErrors as exc:
                self.warn(f"Could not remove the temporary tag {reference}: {exc}")
