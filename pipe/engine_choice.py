"""Which engine pushes, and the fallback from one to the other; each ends with what the report tells.

- native (engine/push.py): every source. Log in and check push access (engine/guard.py), read the
  source, survey the registry; a dry run ends with the preview, a push mounts, transfers and publishes.
- the daemon's push (daemon/push.py): an image of the step's Docker daemon, for PUSH_ENGINE=docker and
  for `auto` on the containerd image store. Its own login and access check first, what each tag held and
  PROTECT_TAGS (guard.py), a dry run's tag changes; then the daemon pushes.
- An answer of the registry the native engine does not understand: the daemon's push takes over, when
  there is a daemon and the push is real.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from .client.api import RegistryClient
from .engine.guard import Guard
from .engine.preview import Preview, preview
from .engine.push import push, survey
from .engine.session import EngineOptions, PushSession
from .errors import (
    NotUnderstood,
    PipeFailure,
    RegistryError,
    RegistryFailure,
    attempts_suffix,
    login_failure_message,
    not_understood_message,
    push_failure_message,
    worded,
)
from .progress import TransferProgress
from .result import Ending
from .retry import DAEMON_RETRIES, RetryPolicy
from .source_choice import Daemon, Origin
from .token_kinds import refused_kind
from .variables import Settings

log = logging.getLogger(__name__)

RegistryFactory = Callable[[Settings, list[str], Callable[[float], None]], RegistryClient]


def connect_registry(settings: Settings, pull_from: list[str], sleep: Callable[[float], None]) -> RegistryClient:
    return RegistryClient(settings.registry, f"{settings.workspace}/{settings.image.name}", settings.username,
                          settings.token, ca_file=settings.ca_file, sleep=sleep, pull_from=pull_from,
                          parallel=settings.parallelism)


@dataclass(frozen=True)
class Engines:
    """The engines for one run: `registry_client` makes the destination's client (tests pass an in-memory
    one); `retry_policy` and `sleep` pace the daemon's push."""

    settings: Settings
    registry_client: RegistryFactory = connect_registry
    retry_policy: RetryPolicy = DAEMON_RETRIES
    sleep: Callable[[float], None] = time.sleep

    @property
    def guard(self) -> Guard:
        return Guard(self.settings.protect_tags, self.settings.dry_run)

    def push(self, origin: Origin) -> Ending:
        daemon = origin.daemon
        if daemon is not None and self.choose(daemon) == "docker":
            return self.push_with_daemon(daemon, origin)
        try:
            return self.push_natively(origin)
        except NotUnderstood as exc:
            if self.guard.dry_run or daemon is None:
                raise PipeFailure(not_understood_message(exc, dry_run=self.guard.dry_run,
                                                         daemon=daemon is not None)) from exc
            log.warning(not_understood_message(exc, dry_run=False, daemon=True))
            return self.push_with_daemon(daemon, origin)

    def choose(self, daemon: Daemon) -> str:
        """Which engine pushes an image of the daemon: PUSH_ENGINE, or for `auto` the faster one for the
        daemon's image store (BENCHMARKS.md, "Docker engines"), said in the log."""
        settings, containerd_store = self.settings, daemon.info.containerd_store
        if self.guard.plans_natively(settings.engine, containerd_store):
            return "native"
        if settings.engine != "auto":
            return settings.engine
        if not containerd_store:
            why = ("the classic image store keeps layers uncompressed: the pipe compresses them on every core and "
                   "skips what the registry holds")
            engine = "native"
        elif settings.platforms:
            why = "PLATFORMS keeps some platforms of the image, and only the native engine rebuilds its index"
            engine = "native"
        else:
            why = ("the containerd image store keeps each layer compressed as it was built: the daemon sends them "
                   "as they are, which is faster than reading them through its export")
            engine = "docker"
        chosen = "the native engine" if engine == "native" else "the Docker daemon's push"
        log.info(f"PUSH_ENGINE auto: {chosen} ({why})")
        return engine

    def describe_push(self) -> Callable[[RegistryError], str]:
        settings = self.settings
        return lambda error: push_failure_message(
            error, reference=settings.destination.reference(settings.tags[0]), registry=settings.registry,
            workspace=settings.workspace, package=settings.image.name, username=settings.username)

    def login(self, registry: RegistryClient, promotion: bool, fallback: bool = True) -> None:
        """Log in and check push access (guard.py), before anything is read."""
        settings = self.settings
        worded(registry.connect, lambda error: login_failure_message(
            error, registry=settings.registry, username=settings.username,
            token_kind=refused_kind(settings.token.reveal())), fallback)
        log.info(f"Logged in to {settings.registry} as {settings.username}")
        self.guard.check_access(registry, settings.destination, settings.username, promotion, self.describe_push(),
                                fallback)

    def push_natively(self, origin: Origin) -> Ending:
        """Log in, check push access, read the source, survey; then the preview, or the push."""
        settings, guard = self.settings, self.guard
        source = origin.source()
        learn_from = [(f"{settings.workspace}/{package}", tag) for package, tag in settings.cache_from]
        pull_from = [name for name, _ in learn_from]
        if settings.source is not None and settings.source.on(settings.registry):
            pull_from.append(settings.source.reference.repository)  # to mount its blobs
        registry = self.registry_client(settings, pull_from, self.sleep)
        try:
            self.login(registry, origin.promotion)
            image = source.image()
            for note in image.notes:
                log.info(note)
            for detail in image.details:
                log.debug(detail)
            for warning in image.warnings:
                log.warning(warning)
            session = PushSession(
                registry, list(settings.tags), TransferProgress(log.info, log.debug),
                EngineOptions(chunk_size=settings.chunk_size, parallel=settings.parallelism,
                              level=settings.compression_level),
                learn_from, on_tag=lambda tag, digest: log.info(
                    f"Pushed {settings.destination.reference(tag)} digest: {digest}"))
            surveyed = worded(lambda: survey(session, image, guard), self.describe_push())
            if guard.dry_run:
                return preview(image, surveyed)
            return worded(lambda: push(session, image, surveyed, guard), self.describe_push())
        finally:
            registry.close()
            origin.close()

    def push_with_daemon(self, daemon: Daemon, origin: Origin) -> Ending:
        """The daemon's push, with the pipe's checks around it (guard.py); then daemon/push.py."""
        from .daemon.api import find_image
        from .daemon.push import DaemonPush, Login

        settings, guard = self.settings, self.guard
        destination, found = settings.destination, find_image(daemon.client, str(settings.image))
        exact = daemon.info.containerd_store  # the image ID is the digest the tags get
        registry = self.registry_client(settings, [], self.sleep)
        try:
            self.login(registry, origin.promotion, fallback=False)
            previous = guard.before_daemon_push(registry, settings.tags, found.id, exact, settings.registry)
            if guard.dry_run:
                digest = found.id if exact else None
                tag_changes, refused = guard.allow(previous, digest, found.id, "the daemon has pushed it")
                return Preview("daemon", str(settings.image), None, [], digest, tag_changes, refused)
            return DaemonPush(
                daemon.client, registry, str(settings.image), found, destination, list(settings.tags),
                Login(settings.username, settings.token), explain_missing=lambda: origin.source().image(),
                policy=self.retry_policy, sleep=self.sleep, previous=previous,
                known_digest=found.id if exact else None).run()
        except RegistryFailure as exc:
            raise PipeFailure(self.describe_push()(exc.error) + attempts_suffix(exc.attempts)) from exc
        finally:
            registry.close()
