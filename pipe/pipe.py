"""bbc-packages-push-container-image: push an image built earlier in the step (or saved as an
archive, IMAGE_ARCHIVE, or already in a registry, SOURCE_IMAGE) to the Bitbucket container registry,
as `<REGISTRY>/<WORKSPACE>/<name>:<tag>` for each tag in TAGS.

Run as `python3 -m pipe` from a checkout, or as the pipe image's ENTRYPOINT, with the variables in
the environment (variables.py). It reads as variables -> source -> push -> report:
validate every variable (TAGS placeholders expanded); choose the source (the daemon's image is
found now, an archive or a source registry is read after the login); log in and check push access,
so bad credentials fail before any layer is read; push (native: engine/push.py, for every source,
PROTECT_TAGS and DRY_RUN included; docker: docker_engine.py); print the references, digest and what
each tag held before, and write the output file (outputs.py); a dry run prints its plan and writes
nothing. Exit 0 only when every tag was pushed (a dry run: when the push would be allowed); otherwise one
line that says what happened and what to do (a traceback only with DEBUG=true).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from typing import Any, Callable, Mapping, TypeVar

from bitbucket_pipes_toolkit import Pipe, fail

from .client.api import RegistryClient
from .engine.preview import Preview
from .engine.push import push
from .engine.session import EngineOptions, PushSession
from .engine.tags import (
    ImmutableTagRefused,
    ProtectedTags,
    TagChange,
    changes,
    check_by_image,
    is_protected,
    previous_digests,
    refusal,
)
from .entries import list_keys
from .errors import (
    Kind,
    PipeFailure,
    RegistryError,
    RegistryFailure,
    attempts_suffix,
    login_failure_message,
    push_failure_message,
    source_failure_message,
)
from .outputs import build_output, refusal_output, write_output
from .progress import TransferProgress, format_bytes, format_duration
from .result import PushResult
from .retry import DAEMON_RETRIES, RetryPolicy
from .scrubbing import Scrubber, Secret, encoded_forms, install
from .sources.image import Source, layers_text
from .sources.registry import RegistrySource
from .token_kinds import refused_kind
from .variables import SCHEMA, InvalidVariables, Settings, SourceSettings, parse_settings, schema_problems

# The daemon's modules (the docker SDK) and the archive readers are imported where they are used: a copy
# from a registry, the quickest run of the pipe, loads neither (its start-up is in BENCHMARKS.md).

T = TypeVar("T")

METADATA = {"name": "Bitbucket Packages push container image"}
_BOOLEANS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}


class NotUnderstood(Exception):
    """The registry answered the native engine in a way it does not understand: push with the daemon."""


def render_problems(problems: list[str]) -> str:
    lines = [f"Invalid pipe variables ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"]
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines)


def connect_registry(settings: Settings, pull_from: list[str], sleep: Callable[[float], None]) -> RegistryClient:
    return RegistryClient(settings.registry, f"{settings.workspace}/{settings.image.name}", settings.username,
                          settings.token, ca_file=settings.ca_file, sleep=sleep, pull_from=pull_from,
                          parallel=settings.parallelism)


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


class PushContainerImagePipe(Pipe):
    """The pipe: the toolkit's Pipe with this pipe's schema, validation and run."""

    settings: Settings

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy = DAEMON_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        registry_client: Callable[[Settings, list[str], Callable[[float], None]], RegistryClient] = connect_registry,
    ) -> None:
        environ = dict(os.environ if env is None else env)
        # Scrub before anything can be printed, validation messages included.
        self.scrubber = Scrubber(encoded_forms(environ.get("BITBUCKET_PACKAGES_USERNAME") or "",
                                               environ.get("BITBUCKET_PACKAGES_TOKEN") or ""))
        if (environ.get("SOURCE_PASSWORD") or "").strip():
            for form in encoded_forms((environ.get("SOURCE_USERNAME") or "").strip(),
                                      (environ.get("SOURCE_PASSWORD") or "").strip()):
                self.scrubber.add(form)
        install(self.scrubber)
        self.retry_policy = retry_policy  # the daemon's push (PUSH_ENGINE=docker)
        self.sleep = sleep
        self.registry_client = registry_client
        self.clients: list[RegistryClient] = []  # of the source registry, closed with the destination's
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
            # A YAML list reaches the pipe as NAME_COUNT and NAME_<i>, names the schema cannot list.
            self.settings = parse_settings({**list_keys(self.env), **document})
        except InvalidVariables as exc:
            problems += exc.problems
        if problems:
            self.fail(render_problems(problems))
        document["DEBUG"] = self.settings.debug
        return document

    def run(self) -> dict[str, Any]:
        super().run()
        settings = self.settings
        started = time.monotonic()
        for note in settings.tag_notes:
            self.log_info(note)
        if settings.source is not None:
            self.log_info(f"Copying {settings.source.reference.shown} to {settings.destination.repository} with "
                          f"tags: {' '.join(settings.tags)}")
        else:
            what = settings.archive_shown if settings.archive is not None else settings.image
            self.log_info(f"Pushing {what} to {settings.destination.repository} with tags: {' '.join(settings.tags)}")
        daemonless = settings.archive is not None or settings.source is not None
        client, info = None, None
        if not daemonless:
            from . import daemon
            client = daemon.connect(self.env)
            info = daemon.describe(client)
            self.log_info(f"Docker daemon: {info}")
        try:
            return self._push(client, info, started)
        except ImmutableTagRefused as refused:
            self._report_refusal(refused)
            raise

    def _push(self, client: Any, info: Any, started: float) -> dict[str, Any]:
        settings = self.settings
        if info is not None and self._engine(info) == "docker":
            return self._push_with_daemon(client, info, started)
        try:
            result = self._push_natively(self._source(client, info))
            if isinstance(result, Preview):
                return self._report_dry_run(result)
        except NotUnderstood as exc:
            if settings.dry_run:
                raise PipeFailure(f"Dry run: the registry answered in a way the pipe does not understand ({exc}); "
                                  "nothing was written. Please report this answer") from exc
            if client is None or info is None:
                raise PipeFailure(f"The registry answered the push in a way the pipe does not understand ({exc}); "
                                  "with IMAGE_ARCHIVE or SOURCE_IMAGE there is no Docker daemon to push through "
                                  "instead. Please report this answer") from exc
            self.log_warning(
                f"The registry answered the native push in a way it does not understand ({exc}); pushing once "
                "more through the Docker daemon (PUSH_ENGINE=docker). Please report this answer.")
            return self._push_with_daemon(client, info, started)
        return self._report(result, started)

    def _engine(self, info: Any) -> str:
        """Which engine pushes an image of the daemon: PUSH_ENGINE, or for `auto` the faster one for the
        daemon's image store (BENCHMARKS.md, "Docker engines"), said in the log."""
        settings = self.settings
        if settings.engine == "docker" and settings.dry_run and not info.containerd_store:
            self.log_info("DRY_RUN plans with the native engine: the daemon's push (PUSH_ENGINE=docker) chooses its "
                          "own layers, so the layers it would upload may differ")
            return "native"
        if settings.engine != "auto":
            return settings.engine
        if not info.containerd_store:
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
        self.log_info(f"PUSH_ENGINE auto: {chosen} ({why})")
        return engine

    def _source(self, client: Any, info: Any) -> Source:
        """Where the image comes from: the one place a source is chosen."""
        settings = self.settings
        if settings.source is not None:
            return self._registry_source(settings.source)
        if settings.archive is not None:
            from .sources.archive import ArchiveSource
            return ArchiveSource(settings.archive, settings.archive_shown or settings.archive, settings.image,
                                 settings.platforms)
        from .sources.daemon_export import DaemonSource
        return DaemonSource(client, str(settings.image), info.containerd_store, settings.platforms)

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
        self.log_info(f"Reading the source from {reference.registry} {how}{who}")
        hint = docker_hub_hint(settings, source)

        def describe(failure: RegistryFailure) -> str:
            return source_failure_message(failure.error, source=reference.shown, registry=reference.registry,
                                          repository=reference.repository, who=who, hint=hint) + \
                attempts_suffix(failure.attempts)

        return RegistrySource(client, reference, settings.platforms,
                              lend_to_destination=same_registry and not self._promotion,
                              describe=describe, promotion=self._promotion)

    @property
    def _promotion(self) -> bool:
        """SOURCE_IMAGE is the destination package itself: only manifests are written."""
        source = self.settings.source
        return source is not None and source.on(self.settings.registry) and \
            source.reference.repository == f"{self.settings.workspace}/{self.settings.image.name}"

    def _push_message(self, reference: str) -> Callable[[RegistryError], str]:
        settings = self.settings
        return lambda error: push_failure_message(
            error, reference=reference, registry=settings.registry, workspace=settings.workspace,
            package=settings.image.name, username=settings.username,
        )

    def _push_with_daemon(self, client: Any, info: Any, started: float) -> dict[str, Any]:
        """The daemon's push, with the pipe's checks around it: its own login and push access first, what
        each tag held, PROTECT_TAGS (exact on the containerd store, where the image ID is the digest the
        tags get; by image config on the classic one), a dry run's tag changes; then docker_engine.py."""
        from .daemon import find_image
        from .docker_engine import DaemonPush

        settings = self.settings
        destination = settings.destination
        found = find_image(client, str(settings.image))
        image_id = found.id
        registry = self.registry_client(settings, [], self.sleep)
        try:
            self._login(registry, fallback=False)
            previous = self._tags_before_daemon_push(registry, image_id, info.containerd_store)
            if settings.dry_run:
                digest = image_id if info.containerd_store else None
                tag_changes = changes(previous, digest, settings.protect_tags)
                return self._report_dry_run(Preview(
                    "daemon", str(settings.image), None, [], digest, tag_changes,
                    refusal(tag_changes, image_id, "the daemon has pushed it")))
            result = DaemonPush(
                client, registry, str(settings.image), found, destination, list(settings.tags), settings.username,
                settings.token, self.log_info, self.log_warning, self.log_debug, self._push_message,
                explain_missing=lambda: self._source(client, info).image(), policy=self.retry_policy,
                sleep=self.sleep, on_tag=lambda tag, digest: self.log_info(
                    f"Pushed {destination.reference(tag)} digest: {digest}"),
                previous=previous, known_digest=image_id if info.containerd_store else None).run()
        except RegistryFailure as exc:
            raise PipeFailure(self._push_message(destination.reference(settings.tags[0]))(exc.error)
                              + attempts_suffix(exc.attempts)) from exc
        finally:
            registry.close()
        return self._report(dataclasses.replace(result, previous=tuple(previous.items())), started)

    def _tags_before_daemon_push(self, registry: RegistryClient, image_id: str,
                                 exact: bool) -> dict[str, str | None]:
        """What each tag points at before the daemon pushes (one HEAD each), and PROTECT_TAGS: `exact` when
        the image ID is the digest the tags will get (the containerd store); otherwise a protected tag is
        compared by image, refused when it holds another image config than the local image's ID. Without
        PROTECT_TAGS a registry that cannot be asked only costs the record."""
        settings = self.settings
        try:
            previous = previous_digests(registry, settings.tags)
            if exact:
                refused = refusal(changes(previous, image_id, settings.protect_tags), image_id)
                if refused and not settings.dry_run:
                    raise ProtectedTags(refused)
            elif any(held is not None and is_protected(tag, settings.protect_tags) for tag, held in previous.items()):
                check_by_image(registry, previous, settings.protect_tags, image_id)
            return previous
        except RegistryFailure as exc:
            if settings.protect_tags:
                raise PipeFailure(f"PROTECT_TAGS needs to know what the tags hold, but {settings.registry} could not "
                                  f"be asked ({exc}): nothing was pushed") from exc
            self.log_warning(f"Could not ask {settings.registry} what the tags pointed at before the push ({exc})")
            return {}

    def _login(self, registry: RegistryClient, fallback: bool = True) -> None:
        """Log in and check push access (a dry run: without starting an upload), before anything is read."""
        settings = self.settings
        self._registry_step(registry.connect, lambda error: login_failure_message(
            error, registry=settings.registry, username=settings.username,
            token_kind=refused_kind(settings.token.reveal())), fallback)
        self.log_info(f"Logged in to {settings.registry} as {settings.username}")
        if settings.dry_run:
            self._check_push_access_unwritten(registry)
        elif not self._promotion:  # a new tag of the same package reads nothing: its PUT says it all
            self._registry_step(registry.check_push_access,
                                self._push_message(settings.destination.reference(settings.tags[0])), fallback)

    # -- the native engine (PUSH_ENGINE=native, and every archive) -----------------------------
    def _push_natively(self, source: Source) -> PushResult | Preview:
        """Log in, check push access, read the source, then plan -> transfer -> publish (a dry run: the
        plan's preview)."""
        settings = self.settings
        destination = settings.destination
        learn_from = [(f"{settings.workspace}/{package}", tag) for package, tag in settings.cache_from]
        pull_from = [name for name, _ in learn_from]
        if settings.source is not None and settings.source.on(settings.registry):
            pull_from.append(settings.source.reference.repository)  # to mount its blobs
        registry = self.registry_client(settings, pull_from, self.sleep)
        try:
            self._login(registry)
            describe = self._push_message(destination.reference(settings.tags[0]))
            image = source.image()
            for note in image.notes:
                self.log_info(note)
            for detail in image.details:
                self.log_debug(detail)
            for warning in image.warnings:
                self.log_warning(warning)
            session = PushSession(
                registry, list(settings.tags), TransferProgress(self.log_info, self.log_debug),
                EngineOptions(chunk_size=settings.chunk_size, parallel=settings.parallelism,
                              level=settings.compression_level, dry_run=settings.dry_run),
                learn_from, on_tag=lambda tag, digest: self.log_info(
                    f"Pushed {destination.reference(tag)} digest: {digest}"), protect=settings.protect_tags)
            result = self._registry_step(lambda: push(session, image), describe)
        finally:
            registry.close()
            for client in self.clients:
                client.close()
        if isinstance(result, Preview):
            return result
        verb = "copied" if result.source == "registry" else "uploaded"
        if result.layers_uploaded:
            detail = (f"{layers_text(result.layers_uploaded)} {verb} ({format_bytes(result.pushed_bytes)}), "
                      f"{result.layers_mounted} mounted, {result.layers_skipped} already in the registry")
        else:
            detail = (f"nothing new uploaded: {result.layers_skipped} already in the registry, "
                      f"{result.layers_mounted} mounted" + ("" if result.layers_read else "; no layer was read"))
        self.log_info(f"Layers: {detail}")
        if result.index_digest:
            self.log_info(f"Index {result.index_digest} of {len(result.manifests)} platforms: " +
                          ", ".join(f"{platform} {digest}" for platform, digest in result.manifests))
        return result

    def _check_push_access_unwritten(self, registry: RegistryClient) -> None:
        """A dry run starts no upload: push access is read off the registry's token when it says."""
        settings = self.settings
        granted = registry.granted_push()
        if granted is None:
            self.log_info(f"Dry run: push access is not checked: {settings.registry} tells it only when an upload "
                          "starts, which a dry run does not do")
        elif not granted:
            raise PipeFailure(
                f"Dry run: {settings.registry} grants user {settings.username} no push on "
                f"{settings.workspace}/{settings.image.name}: the package {settings.image.name} may not exist in "
                f"workspace {settings.workspace} (create it and link it to a repository), or these credentials "
                "lack push permission on the repository it is linked to")
        else:
            self.log_info(f"Dry run: push access to {settings.workspace}/{settings.image.name} granted")

    def _log_tag_changes(self, result: PushResult) -> None:
        for tag, previous in result.previous:
            change = TagChange(tag, previous, result.digest, False)
            self.log_info(f"Tag {tag}: {change.done}" + (" (not written)" if change.state == "unchanged" else ""))

    def _report_refusal(self, refused: ImmutableTagRefused) -> None:
        """A tag refused as immutable: which tags were written and which not, in the log and the output file."""
        settings = self.settings
        for tag in refused.written:
            self.log_info(f"Tag {tag}: written before the refusal")
        if not settings.shared_storage_dir:
            return
        destination = settings.destination
        try:
            write_output(settings.shared_storage_dir, refusal_output(destination, refused, list(settings.tags)))
        except OSError as exc:
            self.log_warning(f"Could not write the output file in BITBUCKET_PIPE_SHARED_STORAGE_DIR="
                             f"{settings.shared_storage_dir}: {exc}")

    def _report_dry_run(self, preview: Preview) -> dict[str, Any]:
        """Print the plan; exit 0 when the push would be allowed. No output file: nothing was pushed."""
        settings = self.settings
        for line in preview.lines():
            self.log_info(line)
        if preview.refusal:
            raise PipeFailure(f"Dry run: {preview.refusal}")
        self.success(f"Dry run: pushing {preview.source_image} to {settings.destination.repository} with tags "
                     f"{' '.join(change.tag for change in preview.tags)} is allowed; nothing was written")
        return {}

    @staticmethod
    def _registry_step(operation: Callable[[], T], describe: Callable[[RegistryError], str],
                       fallback: bool = True) -> T:
        """A registry failure in words; an answer the native engine does not understand goes to the daemon
        (`fallback`; the daemon's own push words it)."""
        try:
            return operation()
        except RegistryFailure as exc:
            if fallback and exc.error.kind is Kind.OTHER and exc.status is not None:
                raise NotUnderstood(f"HTTP {exc.status}: {exc.error.detail}") from exc
            raise PipeFailure(describe(exc.error) + attempts_suffix(exc.attempts)) from exc

    # -- the report ----------------------------------------------------------------------------
    def _report(self, result: PushResult, started: float) -> dict[str, Any]:
        settings = self.settings
        duration = time.monotonic() - started
        output = build_output(settings.destination, result, duration)
        self._log_tag_changes(result)
        self.log_info(f"Reference by digest: {output['reference_by_digest']}")
        if settings.shared_storage_dir:
            try:
                path = write_output(settings.shared_storage_dir, output)
            except OSError as exc:
                raise PipeFailure(f"Pushed, but could not write the output file in "
                                  f"BITBUCKET_PIPE_SHARED_STORAGE_DIR={settings.shared_storage_dir}: {exc}") from exc
            self.log_info(f"Wrote {path}")
        if result.source == "registry":
            moved = (f"{result.layers_uploaded} copied ({format_bytes(result.pushed_bytes)}), "
                     f"{result.layers_mounted} mounted, {result.layers_skipped} already there")
            self.success(f"Copied {result.source_image} to {settings.destination.repository} with tags "
                         f"{' '.join(result.tags)} (digest {result.digest}; layers: {moved}; "
                         f"{format_duration(duration)})")
            return output
        uploaded = ("nothing new uploaded, every layer was already in the registry" if result.uploaded_nothing
                    else f"{format_bytes(result.pushed_bytes)} uploaded")
        self.success(f"Pushed {settings.destination.repository} with tags {' '.join(result.tags)} (digest "
                     f"{result.digest}; {uploaded}; {format_duration(duration)})")
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
