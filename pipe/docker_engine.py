"""PUSH_ENGINE=docker: the daemon's own push, as `docker push` does it.

Log in through the daemon (wrong credentials fail before anything is tagged), tag the local image
under each target reference, push each tag reading the whole stream (push_stream.py), and remove the
temporary tags, also on failure. The daemon's push is opaque, so this is the one place the pipe
retries a whole operation (retry.py, `DAEMON_RETRIES`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from . import daemon
from .errors import PipeFailure, RegistryError, RegistryFailure, attempts_suffix, login_failure_message
from .progress import PushProgress, format_bytes
from .push_stream import PushOutcome
from .references import Destination
from .result import PushResult
from .retry import DAEMON_RETRIES, RetriesExhausted, RetryPolicy, call_with_retries
from .sources.image import layers_text
from .variables import Settings

T = TypeVar("T")
Log = Callable[[str], None]


@dataclass
class DaemonPush:
    client: Any  # docker.DockerClient
    settings: Settings
    info: Log
    warning: Log
    debug: Log
    push_message: Callable[[str], Callable[[RegistryError], str]]  # reference -> how a failure is worded
    policy: RetryPolicy = DAEMON_RETRIES
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> PushResult:
        settings = self.settings
        destination: Destination = settings.destination
        image = daemon.find_image(self.client, str(settings.image))
        self.debug(f"Local image {settings.image} is {image.id}")
        self._with_retries(
            lambda: daemon.login(self.client, settings.registry, settings.username, settings.token),
            f"Login to {settings.registry}",
            lambda error: login_failure_message(error, registry=settings.registry, username=settings.username),
        )
        self.info(f"Logged in to {settings.registry} as {settings.username}")

        temporary_tags = daemon.TemporaryTags(self.client, self.warning)
        outcomes: list[PushOutcome] = []
        try:
            for tag in settings.tags:
                temporary_tags.add(image, destination.repository, tag)
            for tag in settings.tags:
                outcomes.append(self._push(destination, tag))
        finally:
            temporary_tags.remove()
        digest = outcomes[0].digest
        assert digest is not None
        if any(outcome.digest != digest for outcome in outcomes):
            self.warning("The tags were pushed with different digests: the local image changed during the push")
        attrs = image.attrs or {}
        platform = "/".join(p for p in (attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant")) if p)
        return PushResult(
            engine="docker", source="daemon", source_image=str(settings.image), digest=digest,
            tags=tuple(settings.tags), platforms=(platform,) if platform else (),
            pushed_bytes=sum(o.uploaded_bytes for o in outcomes),
            layers_uploaded=sum(o.layers_uploaded for o in outcomes),
            layers_skipped=max(o.layers_existing for o in outcomes),
        )

    def _push(self, destination: Destination, tag: str) -> PushOutcome:
        settings = self.settings
        reference = destination.reference(tag)
        self.info(f"Pushing {reference}")
        progress = PushProgress(self.info, self.debug)
        outcome = self._with_retries(
            lambda: daemon.push(self.client, destination.repository, tag, settings.username, settings.token,
                                progress),
            f"Push of {reference}",
            self.push_message(reference),
        )
        if outcome.uploaded_nothing:
            detail = f"nothing new uploaded, {layers_text(outcome.layers_existing)} already in the registry"
        else:
            detail = (f"{layers_text(outcome.layers_uploaded)} uploaded ({format_bytes(outcome.uploaded_bytes)}), "
                      f"{outcome.layers_existing} already in the registry")
        self.info(f"Pushed {reference} digest: {outcome.digest} ({detail})")
        return outcome

    def _with_retries(self, operation: Callable[[], T], what: str, describe: Callable[[RegistryError], str]) -> T:
        policy = self.policy

        def on_retry(attempt: int, wait: float, exc: BaseException) -> None:
            self.warning(f"{what} failed ({exc}); retrying in {wait:.0f} s (attempt {attempt + 1} of "
                         f"{policy.attempts})")

        try:
            return call_with_retries(
                operation,
                policy,
                is_transient=lambda exc: getattr(exc, "transient", False),
                retry_after=lambda exc: getattr(exc, "retry_after", None),
                on_retry=on_retry,
                sleep=self.sleep,
                retry_on=(RegistryFailure,),
            )
        except RetriesExhausted as exc:
            assert isinstance(exc.last, RegistryFailure)
            raise PipeFailure(describe(exc.last.error) + attempts_suffix(exc.attempts)) from exc.last
