#!/usr/bin/env python3
"""bbc-packages-push-container-image: push an image built earlier in the step (or saved as an
archive, IMAGE_ARCHIVE) to the Bitbucket container registry, as `<REGISTRY>/<WORKSPACE>/<name>:<tag>`
for each tag in TAGS.

Run as `python3 -m pipe` from a checkout, or as the pipe image's ENTRYPOINT, with the variables
in the environment (see variables.py). Order of work: validate every variable -> find the image (in
the daemon; an archive is read after the login) -> log in and check push access (bad credentials
fail before any layer is read) -> push (native: engine.py or layout_push.py; docker: tag, push each
tag reading the whole stream, remove the temporary tags, also on failure) -> print references and
digest, write the output file (outputs.py). Exit 0 only when every tag was pushed; otherwise one
line that says what happened and what to do (a traceback only with DEBUG=true).
"""
from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from bitbucket_pipes_toolkit import Pipe, fail

from . import daemon, engine, layout_push
from .errors import (
    Kind,
    PipeFailure,
    RegistryFailure,
    attempts_suffix,
    login_failure_message,
    push_failure_message,
)
from .outputs import build_output, write_output
from .progress import PushProgress, TransferProgress, format_bytes, format_duration
from .push_stream import PushOutcome
from .references import Destination
from .registry_client import RegistryClient
from .retry import RetriesExhausted, RetryPolicy, call_with_retries
from .scrubbing import Scrubber, encoded_forms, install
from .sources import archive_files, archive_images, daemon_export
from .sources.archive_layers import DockerArchiveLayers
from .variables import SCHEMA, InvalidVariables, Settings, parse_settings, schema_problems

T = TypeVar("T")

METADATA = {"name": "Bitbucket Packages push container image"}
_BOOLEANS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}


def _layers(count: int) -> str:
    return f"{count} layer{'' if count == 1 else 's'}"


class NotUnderstood(Exception):
    """The registry answered the native engine in a way it does not understand: push with the daemon."""


def render_problems(problems: list[str]) -> str:
    lines = [f"Invalid pipe variables ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"]
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines)


class PushContainerImagePipe(Pipe):
    """The pipe: the toolkit's Pipe with this pipe's schema, validation and run."""

    settings: Settings

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        environ = dict(os.environ if env is None else env)
        # Scrub before anything can be printed, validation messages included.
        self.scrubber = Scrubber(encoded_forms(environ.get("BITBUCKET_PACKAGES_USERNAME") or "",
                                               environ.get("BITBUCKET_PACKAGES_TOKEN") or ""))
        install(self.scrubber)
        self.retry_policy = retry_policy
        self.sleep = sleep
        super().__init__(pipe_metadata=METADATA, schema=SCHEMA, env=environ, check_for_newer_version=False)

    def validate(self) -> dict[str, Any]:
        """Collect every problem (schema types, then the reference grammar) and fail once with all of them."""
        values: dict[str, Any] = {name: self.env[name] for name in self.schema if name in self.env}
        if "DEBUG" in values:
            raw = str(values["DEBUG"]).strip().lower()
            values["DEBUG"] = None if raw == "" else _BOOLEANS.get(raw, values["DEBUG"])
        problems: list[str] = []
        if self.validator.validate(values):
            document = dict(self.validator.document)
        else:
            problems += schema_problems(self.validator.errors, values)
            document = {k: v for k, v in values.items() if k not in self.validator.errors}
        try:
            self.settings = parse_settings(document)
        except InvalidVariables as exc:
            problems += exc.problems
        if problems:
            self.fail(render_problems(problems))
        document["DEBUG"] = self.settings.debug
        return document

    def _with_retries(self, operation: Callable[[], T], what: str, describe: Callable[[Any], str]) -> T:
        policy = self.retry_policy

        def on_retry(attempt: int, wait: float, exc: BaseException) -> None:
            self.log_warning(f"{what} failed ({exc}); retrying in {wait:.0f} s (attempt {attempt + 1} of {policy.attempts})")

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

    def run(self) -> dict[str, Any]:
        super().run()
        settings = self.settings
        destination = settings.destination
        started = time.monotonic()
        if settings.archive is not None:
            self.log_info(f"Pushing {settings.archive_shown} to {destination.repository} with tags: "
                          f"{' '.join(settings.tags)}")
            try:
                return self._run_archive(destination, started)
            except NotUnderstood as exc:
                raise PipeFailure(f"The registry answered the push in a way the pipe does not understand ({exc}); with "
                                  "IMAGE_ARCHIVE there is no Docker daemon to push through instead. Please report "
                                  "this answer") from exc
        self.log_info(f"Pushing {settings.image} to {destination.repository} with tags: {' '.join(settings.tags)}")
        client = daemon.connect(self.env)
        if settings.engine == "native":
            try:
                return self._run_native(client, destination, started)
            except NotUnderstood as exc:
                self.log_warning(
                    f"The registry answered the native push in a way it does not understand ({exc}); pushing once "
                    "more through the Docker daemon (PUSH_ENGINE=docker). Please report this answer.")
        return self._run_docker(client, destination, started)

    # -- the daemon's own push (PUSH_ENGINE=docker) ------------------------------------------
    def _run_docker(self, client: Any, destination: Destination, started: float) -> dict[str, Any]:
        settings = self.settings
        image = daemon.find_image(client, str(settings.image))
        self.log_debug(f"Local image {settings.image} is {image.id}")

        self._with_retries(
            lambda: daemon.login(client, settings.registry, settings.username, settings.token),
            f"Login to {settings.registry}",
            lambda error: login_failure_message(error, registry=settings.registry, username=settings.username),
        )
        self.log_info(f"Logged in to {settings.registry} as {settings.username}")

        temporary_tags = daemon.TemporaryTags(client, self.log_warning)
        outcomes: list[tuple[str, PushOutcome]] = []
        try:
            for tag in settings.tags:
                temporary_tags.add(image, destination.repository, tag)
            for tag in settings.tags:
                outcomes.append((tag, self._push(client, destination, tag)))
        finally:
            temporary_tags.remove()
        return self._finish(destination, outcomes, time.monotonic() - started, engine="docker")

    def _push(self, client: Any, destination: Destination, tag: str) -> PushOutcome:
        settings = self.settings
        reference = destination.reference(tag)
        self.log_info(f"Pushing {reference}")
        progress = PushProgress(self.log_info, self.log_debug)
        outcome = self._with_retries(
            lambda: daemon.push(client, destination.repository, tag, settings.username, settings.token, progress),
            f"Push of {reference}",
            self._push_message(reference),
        )
        if outcome.uploaded_nothing:
            detail = f"nothing new uploaded, {_layers(outcome.layers_existing)} already in the registry"
        else:
            detail = (f"{_layers(outcome.layers_uploaded)} uploaded ({format_bytes(outcome.uploaded_bytes)}), "
                      f"{outcome.layers_existing} already in the registry")
        self.log_info(f"Pushed {reference} digest: {outcome.digest} ({detail})")
        return outcome

    def _push_message(self, reference: str) -> Callable[[Any], str]:
        settings = self.settings
        return lambda error: push_failure_message(
            error, reference=reference, registry=settings.registry, workspace=settings.workspace,
            package=settings.image.name, username=settings.username,
        )

    # -- the native engine (PUSH_ENGINE=native) ----------------------------------------------
    def _run_native(self, client: Any, destination: Destination, started: float) -> dict[str, Any]:
        settings = self.settings
        image = daemon_export.inspect(client, str(settings.image))
        self.log_debug(f"Local image {settings.image} is {image.image_id} ({_layers(len(image.diff_ids))})")

        def push(registry: RegistryClient, options: engine.EngineOptions, progress: TransferProgress,
                 on_tag: Callable[[str, str], None], remembered: dict[str, engine.Blob]) -> engine.PushResult:
            return engine.push(registry, image, list(settings.tags), self._learn_from(),
                               lambda: daemon_export.export(client, image), options, progress, on_tag, remembered)

        result = self._push_natively(destination, push, image.size)
        return self._native_finish(destination, started, result, str(settings.image), "daemon", [image.platform])

    def _run_archive(self, destination: Destination, started: float) -> dict[str, Any]:
        """IMAGE_ARCHIVE: a docker-archive, an OCI layout or archive, read in place; no daemon."""
        settings = self.settings
        assert settings.archive is not None and settings.archive_shown is not None
        shown = settings.archive_shown
        found: list[archive_images.Archive] = []

        def push(registry: RegistryClient, options: engine.EngineOptions, progress: TransferProgress,
                 on_tag: Callable[[str, str], None], remembered: dict[str, engine.Blob]) -> engine.PushResult:
            if not found:  # read once, after the login: a wrong token fails before the archive is read
                files = archive_files.open_files(Path(settings.archive), shown)
                found.append(archive_images.read_archive(files, shown, settings.image.name, settings.image.tag,
                                                         str(settings.image), settings.platforms))
                self._describe_archive(found[0])
            source = found[0]
            if source.docker is not None:
                docker_image = source.docker
                progress.total = docker_image.image.size
                return engine.push(registry, docker_image.image, list(settings.tags), self._learn_from(),
                                   lambda: DockerArchiveLayers(source.files, docker_image), options, progress,
                                   on_tag, remembered)
            assert source.layout is not None
            progress.total = sum(layer.blob.size for m in source.layout.manifests for layer in m.layers)
            return layout_push.push(registry, source.files, source.layout, list(settings.tags), self._learn_from(),
                                    options, progress, on_tag, remembered)

        result = self._push_natively(destination, push, 0)
        source = found[0]
        platforms = ([source.docker.image.platform] if source.docker is not None
                     else source.layout.platforms if source.layout is not None else [])
        return self._native_finish(destination, started, result, shown, source.kind, platforms)

    def _describe_archive(self, source: archive_images.Archive) -> None:
        if source.docker is not None:
            image = source.docker.image
            names = ", ".join(source.docker.names) or "no name"
            self.log_info(f"Archive: {source.kind} ({source.files.container}), image {names}, {image.platform}, "
                          f"{_layers(len(image.diff_ids))}")
            return
        layout = source.layout
        assert layout is not None
        what = f"index of {len(layout.platforms)} platforms" if layout.is_index else "one image"
        names = ", ".join(layout.names) or "no name"
        self.log_info(f"Archive: {source.kind} ({source.files.container}), {what} ({names}): "
                      f"{' '.join(layout.platforms) or 'platform not stated'}")
        if layout.left_out:
            self.log_info(f"Left out by PLATFORMS: {' '.join(layout.left_out)}")

    def _learn_from(self) -> list[tuple[str, str]]:
        return [(f"{self.settings.workspace}/{package}", tag) for package, tag in self.settings.cache_from]

    def _push_natively(self, destination: Destination, push: Callable[..., engine.PushResult],
                       total: int) -> engine.PushResult:
        """Log in, check push access, then `push` with retries (blobs finished by an attempt stay done)."""
        settings = self.settings
        repository = f"{settings.workspace}/{settings.image.name}"
        registry = RegistryClient(
            settings.registry, repository, settings.username, settings.token, ca_file=settings.ca_file,
            policy=self.retry_policy, sleep=self.sleep, pull_from=[name for name, _ in self._learn_from()],
            parallel=settings.parallelism,
        )
        try:
            self._native_step(registry.connect, f"Login to {settings.registry}",
                              lambda error: login_failure_message(error, registry=settings.registry,
                                                                  username=settings.username))
            self.log_info(f"Logged in to {settings.registry} as {settings.username}")
            first = destination.reference(settings.tags[0])
            self._native_step(registry.check_push_access, f"Push of {first}", self._push_message(first))
            options = engine.EngineOptions(chunk_size=settings.chunk_size, parallel=settings.parallelism,
                                           level=settings.compression_level)
            remembered: dict[str, engine.Blob] = {}  # blobs uploaded by earlier attempts of this push

            def on_tag(tag: str, digest: str) -> None:
                self.log_info(f"Pushed {destination.reference(tag)} digest: {digest}")

            def attempt() -> engine.PushResult:
                progress = TransferProgress(self.log_info, self.log_debug, total_bytes=total)
                return push(registry, options, progress, on_tag, remembered)

            return self._native_step(attempt, f"Push of {first}", self._push_message(first))
        finally:
            registry.close()

    def _native_finish(self, destination: Destination, started: float, result: engine.PushResult, source_image: str,
                       source: str, platforms: list[str]) -> dict[str, Any]:
        settings = self.settings
        if result.layers_uploaded:
            detail = (f"{_layers(result.layers_uploaded)} uploaded ({format_bytes(result.pushed_bytes)}), "
                      f"{result.layers_mounted} mounted, {result.layers_skipped} already in the registry")
        else:
            detail = (f"nothing new uploaded: {result.layers_skipped} already in the registry, "
                      f"{result.layers_mounted} mounted" + ("" if result.exported else "; no layer was read"))
        self.log_info(f"Layers: {detail}")
        if result.index_digest:
            self.log_info(f"Index {result.index_digest} of {len(result.manifests)} platforms: " +
                          ", ".join(f"{platform} {digest}" for platform, digest in result.manifests))
        existing = result.layers_skipped + result.layers_mounted
        # One upload serves every tag: the bytes and layers count once, against the first tag.
        outcomes = [(tag, PushOutcome(digest=result.digest, uploaded_bytes=result.pushed_bytes if i == 0 else 0,
                                      layers_uploaded=result.layers_uploaded if i == 0 else 0,
                                      layers_existing=existing))
                    for i, tag in enumerate(settings.tags)]
        details = {"layers_uploaded": result.layers_uploaded, "layers_mounted": result.layers_mounted,
                   "layers_skipped": result.layers_skipped, "source": source, "platforms": platforms,
                   "index_digest": result.index_digest, "manifests": list(result.manifests)}
        return self._finish(destination, outcomes, time.monotonic() - started, engine="native",
                            details=details, source_image=source_image)

    def _native_step(self, operation: Callable[[], T], what: str, describe: Callable[[Any], str]) -> T:
        """Retried like every registry call; an answer the engine does not understand goes to the daemon."""
        try:
            return self._with_retries(operation, what, describe)
        except PipeFailure as exc:
            cause = exc.__cause__
            if isinstance(cause, RegistryFailure) and cause.error.kind is Kind.OTHER and cause.status is not None:
                raise NotUnderstood(f"HTTP {cause.status}: {cause.error.detail}") from exc
            raise

    def _finish(self, destination: Destination, outcomes: list[tuple[str, PushOutcome]], duration: float,
                engine: str, details: dict[str, Any] | None = None,
                source_image: str | None = None) -> dict[str, Any]:
        settings = self.settings
        tags = [tag for tag, _ in outcomes]
        digest = outcomes[0][1].digest
        assert digest is not None
        if any(outcome.digest != digest for _, outcome in outcomes):
            self.log_warning("The tags were pushed with different digests: the local image changed during the push")
        pushed_bytes = sum(outcome.uploaded_bytes for _, outcome in outcomes)
        nothing_new = all(outcome.uploaded_nothing for _, outcome in outcomes)
        if details is None:
            details = {"layers_uploaded": sum(o.layers_uploaded for _, o in outcomes),
                       "layers_skipped": max(o.layers_existing for _, o in outcomes), "layers_mounted": 0}
        output = build_output(
            registry=settings.registry,
            workspace=settings.workspace,
            image=settings.image.name,
            source_image=source_image or str(settings.image),
            digest=digest,
            tags=tags,
            references=[destination.reference(tag) for tag in tags],
            reference_by_digest=destination.reference_by_digest(digest),
            pushed_bytes=pushed_bytes,
            duration_seconds=duration,
            engine=engine,
            **details,
        )
        self.log_info(f"Reference by digest: {output['reference_by_digest']}")
        if settings.shared_storage_dir:
            try:
                path = write_output(settings.shared_storage_dir, output)
            except OSError as exc:
                raise PipeFailure(f"Pushed, but could not write the output file in "
                                  f"BITBUCKET_PIPE_SHARED_STORAGE_DIR={settings.shared_storage_dir}: {exc}") from exc
            self.log_info(f"Wrote {path}")
        uploaded = ("nothing new uploaded, every layer was already in the registry" if nothing_new
                    else f"{format_bytes(pushed_bytes)} uploaded")
        self.success(f"Pushed {destination.repository} with tags {' '.join(tags)} (digest {digest}; "
                     f"{uploaded}; {format_duration(duration)})")
        return output


def _stop(signum: int, frame: Any) -> None:
    # A stopped step (SIGTERM) still runs the `finally` that removes the temporary tags.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    """Run the pipe; every failure ends in one line (and a traceback only with DEBUG=true)."""
    signal.signal(signal.SIGTERM, _stop)
    debug = False
    try:
        pipe = PushContainerImagePipe()
        debug = pipe.settings.debug
        pipe.run()
    except PipeFailure as exc:
        if debug:
            logging.getLogger().debug("Failure details", exc_info=True)
        fail(str(exc))
    except KeyboardInterrupt:
        fail("Interrupted before the push finished")
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one readable line, no traceback
        if debug:
            logging.getLogger().debug("Unexpected error", exc_info=True)
        fail(f"Unexpected error: {type(exc).__name__}: {exc} (run with DEBUG=true for details)")
    return 0
