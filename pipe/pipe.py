"""bbc-packages-push-container-image: push an image built earlier in the step (or saved as an
archive, IMAGE_ARCHIVE, or already in a registry, SOURCE_IMAGE) to the Bitbucket container registry,
as `<REGISTRY>/<WORKSPACE>/<name>:<tag>` for each tag in TAGS.

Run as `python3 -m pipe` from a checkout, or as the pipe image's ENTRYPOINT, with the variables in
the environment. It reads as variables -> source -> engine -> report, each a call into the module that
owns it: every variable validated, every problem listed at once (variables.py); where the image comes
from (source_choice.py: the daemon is connected now, an archive or a source registry is read after the
login); which engine pushes, and the fallback from one to the other (engine_choice.py: login and push access
first, so bad credentials fail before any layer is read; PROTECT_TAGS and DRY_RUN in engine/guard.py);
what the run says and the output file (report.py). Exit 0 only when every tag was pushed (a dry run:
when the push would be allowed); otherwise one line that says what happened and what to do (a traceback
only with DEBUG=true).
"""
from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any, Callable, Mapping

from bitbucket_pipes_toolkit import Pipe, fail

from .engine.tags import ImmutableTagRefused
from .engine_choice import Engines, RegistryFactory, connect_registry
from .entries import list_keys
from .errors import PipeFailure
from .report import Report
from .retry import DAEMON_RETRIES, RetryPolicy
from .scrubbing import scrub_credentials
from .source_choice import origin
from .variables import SCHEMA, InvalidVariables, Settings, parse_settings

METADATA = {"name": "Bitbucket Packages push container image"}


class PushContainerImagePipe(Pipe):
    """The pipe: the toolkit's Pipe with this pipe's variables and run."""

    settings: Settings

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy = DAEMON_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        registry_client: RegistryFactory = connect_registry,
    ) -> None:
        environ = dict(os.environ if env is None else env)
        self.scrubber = scrub_credentials(environ)  # before anything can be printed, validation included
        self.retry_policy = retry_policy  # the daemon's push (PUSH_ENGINE=docker)
        self.sleep = sleep
        self.registry_client = registry_client
        super().__init__(pipe_metadata=METADATA, schema=SCHEMA, env=environ, check_for_newer_version=False)

    def validate(self) -> dict[str, Any]:
        """Every problem at once, in the pipe's own words (variables.py says why not cerberus')."""
        values = {name: self.env[name] for name in self.schema if name in self.env}
        try:
            # A YAML list reaches the pipe as NAME_COUNT and NAME_<i>, names the schema cannot list.
            self.settings = parse_settings({**list_keys(self.env), **values})
        except InvalidVariables as exc:
            self.fail(exc.rendered())
        return {**values, "DEBUG": self.settings.debug}

    def run(self) -> dict[str, Any]:
        super().run()
        report = Report(self.settings)
        report.start()
        engines = Engines(self.settings, self.registry_client, self.retry_policy, self.sleep)
        try:
            ending = engines.push(origin(self.settings, self.env, self.sleep))
        except ImmutableTagRefused as refused:
            report.refused(refused)
            raise
        return report.finish(ending)


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
