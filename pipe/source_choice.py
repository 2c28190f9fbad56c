"""Where the image comes from, chosen in one place: the step's Docker daemon, IMAGE_ARCHIVE, or an image
already in a registry (SOURCE_IMAGE), and how the pipe logs in there.

The daemon is connected (and described) now, so a step without one fails before anything else; the
image's `Source` is built only when the native engine reads it (the daemon's own push reads none). The
daemon's modules (the docker SDK) and the archive readers are imported where they are used: a copy from
a registry, the quickest run of the pipe, loads neither (its start-up is in BENCHMARKS.md).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .client.api import RegistryClient
from .errors import RegistryFailure, attempts_suffix, source_failure_message
from .scrubbing import Secret
from .sources.image import Source
from .sources.registry import RegistrySource
from .variables import Settings, SourceSettings

log = logging.getLogger(__name__)


def source_login(settings: Settings, source: SourceSettings) -> tuple[str, Secret, str]:
    """Who the pipe is at the source registry: SOURCE_USERNAME, else its own credentials on the same
    registry, else anonymous; and how messages name that."""
    if source.credentials_given:
        return source.username, source.password, f"SOURCE_USERNAME={source.username}"
    if source.on(settings.registry):
        return settings.username, settings.token, f"the pipe's own credentials, user {settings.username}"
    return "", Secret(""), "anonymously"


def docker_hub_hint(settings: Settings, source: SourceSettings) -> str:
    """A name without a host is Docker Hub's; when it names the destination package, say so."""
    reference = source.reference
    if not reference.implicit_registry or reference.repository.rsplit("/", 1)[-1] != settings.image.name:
        return ""
    suffix = f"@{reference.digest}" if reference.digest else f":{reference.tag or 'latest'}"
    return (f"SOURCE_IMAGE {reference.shown} has no registry host, so it means Docker Hub ({reference}); for this "
            f"workspace's package write {settings.registry}/{settings.workspace}/{settings.image.name}{suffix}, or "
            f"{suffix} alone for IMAGE_NAME's package")


def is_promotion(settings: Settings) -> bool:
    """SOURCE_IMAGE is the destination package itself: only manifests are written."""
    source = settings.source
    return source is not None and source.on(settings.registry) and \
        source.reference.repository == f"{settings.workspace}/{settings.image.name}"


@dataclass(frozen=True)
class Daemon:
    client: Any  # docker.DockerClient
    info: Any  # daemon.api.DaemonInfo


@dataclass
class Origin:
    """The image's origin: `daemon` is the connected daemon when the image is in one (None: IMAGE_ARCHIVE or
    SOURCE_IMAGE); `clients` are the source registry's, closed with `close`."""

    settings: Settings
    daemon: Daemon | None
    sleep: Callable[[float], None]
    clients: list[RegistryClient] = field(default_factory=list)

    @property
    def promotion(self) -> bool:
        return is_promotion(self.settings)

    def source(self) -> Source:
        """Where the image comes from: the one place a source is chosen."""
        settings = self.settings
        if settings.source is not None:
            return self._registry_source(settings.source)
        if settings.archive is not None:
            from .sources.archive import ArchiveSource
            return ArchiveSource(settings.archive, settings.archive_shown or settings.archive, settings.image,
                                 settings.platforms)
        from .sources.daemon_export import DaemonSource
        assert self.daemon is not None
        return DaemonSource(self.daemon.client, str(settings.image), self.daemon.info.containerd_store,
                            settings.platforms)

    def _registry_source(self, source: SourceSettings) -> RegistrySource:
        settings = self.settings
        reference = source.reference
        username, password, who = source_login(settings, source)
        same_registry = source.on(settings.registry)
        client = RegistryClient(reference.endpoint, reference.repository, username, password,
                                ca_file=source.ca_file or (settings.ca_file if same_registry else None),
                                sleep=self.sleep, parallel=settings.parallelism, actions="pull")
        self.clients.append(client)
        how = "as " if who.startswith("SOURCE") else "" if who == "anonymously" else "with "
        log.info(f"Reading the source from {reference.registry} {how}{who}")
        hint = docker_hub_hint(settings, source)

        def describe(failure: RegistryFailure) -> str:
            return source_failure_message(failure.error, source=reference.shown, registry=reference.registry,
                                          repository=reference.repository, who=who, hint=hint) + \
                attempts_suffix(failure.attempts)

        return RegistrySource(client, reference, settings.platforms,
                              lend_to_destination=same_registry and not self.promotion,
                              describe=describe, promotion=self.promotion)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def origin(settings: Settings, environ: Mapping[str, str], sleep: Callable[[float], None]) -> Origin:
    """The image's origin; the step's Docker daemon is connected now when the image is in it."""
    if settings.archive is not None or settings.source is not None:
        return Origin(settings, None, sleep)
    from .daemon import api
    client = api.connect(environ)
    info = api.describe(client)
    log.info(f"Docker daemon: {info}")
    return Origin(settings, Daemon(client, info), sleep)
