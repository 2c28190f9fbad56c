"""What the run says, in one place: what it pushes, then how it ended, whichever engine.

- A push: the layers (the native engine's summary; the daemon's push says its own as it goes), the
  index and its platforms, each tag's change, the reference by digest, the output file (outputs.py),
  and the summary line.
- A dry run: its plan (engine/preview.py); exit 0 when the push would be allowed. No output file:
  nothing was pushed.
- A tag the registry refused as immutable: which tags were written and which not, in the log and the
  output file; the failure's line itself is the exception's.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from bitbucket_pipes_toolkit import success

from .engine.preview import Preview
from .engine.tags import ImmutableTagRefused, TagChange
from .errors import PipeFailure, output_unwritten_message
from .outputs import build_output, refusal_output, write_output
from .progress import format_bytes, format_duration
from .result import Ending, PushResult
from .sources.image import layers_text
from .variables import Settings

log = logging.getLogger(__name__)


class Report:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.monotonic()

    def start(self) -> None:
        settings = self.settings
        for note in settings.tag_notes:
            log.info(note)
        if settings.source is not None:
            log.info(f"Copying {settings.source.reference.shown} to {settings.destination.repository} with "
                     f"tags: {' '.join(settings.tags)}")
        else:
            what = settings.archive_shown if settings.archive is not None else settings.image
            log.info(f"Pushing {what} to {settings.destination.repository} with tags: {' '.join(settings.tags)}")

    def finish(self, ending: Ending) -> dict[str, Any]:
        return ending.reported_by(self)

    def planned(self, preview: Preview) -> dict[str, Any]:
        """Print the plan; exit 0 when the push would be allowed."""
        for line in preview.lines():
            log.info(line)
        if preview.refusal:
            raise PipeFailure(f"Dry run: {preview.refusal}")
        success(f"Dry run: pushing {preview.source_image} to {self.settings.destination.repository} with tags "
                f"{' '.join(change.tag for change in preview.tags)} is allowed; nothing was written", do_exit=False)
        return {}

    def pushed(self, result: PushResult) -> dict[str, Any]:
        settings = self.settings
        if result.engine == "native":
            self._layers(result)
        duration = time.monotonic() - self.started
        output = build_output(settings.destination, result, duration)
        for tag, previous in result.previous:
            change = TagChange(tag, previous, result.digest, False)
            log.info(f"Tag {tag}: {change.done}" + (" (not written)" if change.state == "unchanged" else ""))
        log.info(f"Reference by digest: {output['reference_by_digest']}")
        if settings.shared_storage_dir:
            try:
                path = write_output(settings.shared_storage_dir, output)
            except OSError as exc:
                raise PipeFailure(output_unwritten_message(settings.shared_storage_dir, exc)) from exc
            log.info(f"Wrote {path}")
        success(self._summary(result, duration), do_exit=False)
        return output

    @staticmethod
    def _layers(result: PushResult) -> None:
        verb = "copied" if result.source == "registry" else "uploaded"
        if result.layers_uploaded:
            detail = (f"{layers_text(result.layers_uploaded)} {verb} ({format_bytes(result.pushed_bytes)}), "
                      f"{result.layers_mounted} mounted, {result.layers_skipped} already in the registry")
        else:
            detail = (f"nothing new uploaded: {result.layers_skipped} already in the registry, "
                      f"{result.layers_mounted} mounted" + ("" if result.layers_read else "; no layer was read"))
        log.info(f"Layers: {detail}")
        if result.index_digest:
            log.info(f"Index {result.index_digest} of {len(result.manifests)} platforms: " +
                     ", ".join(f"{platform} {digest}" for platform, digest in result.manifests))

    def _summary(self, result: PushResult, duration: float) -> str:
        repository = self.settings.destination.repository
        if result.source == "registry":
            moved = (f"{result.layers_uploaded} copied ({format_bytes(result.pushed_bytes)}), "
                     f"{result.layers_mounted} mounted, {result.layers_skipped} already there")
            return (f"Copied {result.source_image} to {repository} with tags {' '.join(result.tags)} (digest "
                    f"{result.digest}; layers: {moved}; {format_duration(duration)})")
        uploaded = ("nothing new uploaded, every layer was already in the registry" if result.uploaded_nothing
                    else f"{format_bytes(result.pushed_bytes)} uploaded")
        return (f"Pushed {repository} with tags {' '.join(result.tags)} (digest {result.digest}; {uploaded}; "
                f"{format_duration(duration)})")

    def refused(self, refused: ImmutableTagRefused) -> None:
        """A tag refused as immutable: which tags were written and which not, in the log and the output file."""
        settings = self.settings
        for tag in refused.written:
            log.info(f"Tag {tag}: written before the refusal")
        if not settings.shared_storage_dir:
            return
        try:
            write_output(settings.shared_storage_dir, refusal_output(settings.destination, refused,
                                                                     list(settings.tags)))
        except OSError as exc:
            log.warning(f"Could not write the output file in BITBUCKET_PIPE_SHARED_STORAGE_DIR="
                        f"{settings.shared_storage_dir}: {exc}")
