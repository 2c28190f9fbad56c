"""The pipe's variables, parsed into `Settings` with every problem named.

Pure functions only: `parse_settings` takes the variables as the environment gives them and either
returns `Settings` or raises `InvalidVariables` listing *all* problems at once, so a user fixes their
step in one go instead of one failed run per mistake. Each variable is parsed on its own (one parser per
kind: text, flag, bounded number, entries), then the rules between variables are checked in one place
(`conflicts`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .entries import LIST_VARIABLES, Entry, entries
from .references import (
    NAME_TOTAL_MAX,
    Destination,
    ImageName,
    SourceReference,
    parse_image_name,
    parse_source_image,
    registry_problem,
    repository_name_problem,
    split_name_and_tag,
    tag_problem,
)
from .scrubbing import Secret
from .tag_templates import BuildValues, expand_tags

DEFAULT_REGISTRY = "crg.apkg.io"

# The names the pipe reads, for bitbucket-pipes-toolkit's Pipe, which wants a cerberus schema. Each is
# declared an optional string on purpose: cerberus stops at the first rule a value breaks and words it in
# its own terms ("must be of boolean type"), while a user needs every problem of the step at once, with
# what to do about it, and some rules span several variables (SOURCE_IMAGE with IMAGE_ARCHIVE, PLATFORMS
# with PUSH_ENGINE). So types, required variables and defaults are `parse_settings`'s, and the pipe's
# `validate()` (pipe.py) calls it instead of cerberus.
VARIABLES = (
    "IMAGE_NAME", "TAGS", "WORKSPACE", "BITBUCKET_WORKSPACE", "BITBUCKET_PACKAGES_USERNAME", "BITBUCKET_PACKAGES_TOKEN",
    "REGISTRY", "BITBUCKET_PIPE_SHARED_STORAGE_DIR", "DEBUG", "PUSH_ENGINE", "CACHE_FROM", "COMPRESSION_LEVEL",
    "UPLOAD_PARALLELISM", "CHUNK_SIZE_MB", "REGISTRY_CA_FILE", "IMAGE_ARCHIVE", "PLATFORMS", "BITBUCKET_CLONE_DIR",
    "SOURCE_IMAGE", "SOURCE_USERNAME", "SOURCE_PASSWORD", "SOURCE_CA_FILE", "PROTECT_TAGS", "DRY_RUN",
    # The step's own variables, for the placeholders of TAGS (tag_templates.py).
    "BITBUCKET_BRANCH", "BITBUCKET_TAG", "BITBUCKET_COMMIT", "BITBUCKET_BUILD_NUMBER",
)
SCHEMA: dict[str, dict[str, Any]] = {name: {"type": "string", "required": False, "nullable": True}
                                     for name in VARIABLES}

ENGINES = ("auto", "native", "docker")
DEFAULT_LEVEL = 1
DEFAULT_PARALLELISM = 3
DEFAULT_CHUNK_MB = 16
# A copy from a registry (SOURCE_IMAGE) holds each chunk until the registry acknowledges it, so its memory
# is UPLOAD_PARALLELISM x this: 32 MiB halves its requests for ~50 MB more (BENCHMARKS.md, copy).
COPY_CHUNK_MB = 32


class InvalidVariables(Exception):
    """Raised with every problem found in the variables, one message each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def rendered(self) -> str:
        """The one failure line: every problem, one a line."""
        problems = self.problems
        lines = [f"Invalid pipe variables ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"]
        return "\n".join(lines + [f"  - {problem}" for problem in problems])


@dataclass(frozen=True)
class SourceSettings:
    """SOURCE_IMAGE and how to log in to its registry (no credentials: the pipe's own for the same
    registry, else anonymous)."""

    reference: SourceReference
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""), repr=False)
    ca_file: str | None = None

    @property
    def credentials_given(self) -> bool:
        return bool(self.username)

    def on(self, registry: str) -> bool:
        """Whether the source is in `registry` (host names are case-insensitive)."""
        return self.reference.registry.lower() == registry.lower()


@dataclass(frozen=True)
class Settings:
    image: ImageName
    tags: tuple[str, ...]
    workspace: str
    username: str
    token: Secret = field(repr=False)
    registry: str = DEFAULT_REGISTRY
    debug: bool = False
    shared_storage_dir: str | None = None
    engine: str = "auto"  # auto (by the daemon's image store), native or docker
    cache_from: tuple[tuple[str, str], ...] = ()  # (package, tag) pairs of the same workspace
    compression_level: int = DEFAULT_LEVEL
    parallelism: int = DEFAULT_PARALLELISM
    chunk_size: int = DEFAULT_CHUNK_MB * 1024 * 1024
    ca_file: str | None = None
    archive: str | None = None  # IMAGE_ARCHIVE resolved against the clone directory
    archive_shown: str | None = None  # IMAGE_ARCHIVE as the user wrote it, for messages
    platforms: tuple[str, ...] = ()
    source: SourceSettings | None = None  # SOURCE_IMAGE: copy from a registry
    tag_notes: tuple[str, ...] = ()  # TAGS entries left out in this build, and why: logged by the pipe
    protect_tags: tuple[str, ...] = ()  # PROTECT_TAGS patterns
    dry_run: bool = False

    @property
    def destination(self) -> Destination:
        return Destination(self.registry, self.workspace, self.image.name)


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return "" if value is None else str(value).strip()


PATTERN = re.compile(r"[\w.\-*?\[\]!]+", re.ASCII)


def parse_protect_tags(entries: Sequence[Entry]) -> tuple[tuple[str, ...], list[str]]:
    """PROTECT_TAGS: shell-style patterns (fnmatch: `*`, `?`, `[...]`) of tags that, once in the registry,
    are never moved to another digest."""
    found: list[str] = []
    problems = []
    for entry in entries:
        if not PATTERN.fullmatch(entry.text):
            hint = " (PROTECT_TAGS is space-separated)" if "," in entry.text and not entry.listed else ""
            problems.append(f"{entry.label} is not a tag pattern: use tag characters and the shell "
                            f"wildcards * ? [...], e.g. \"[0-9]*.*.*\" or \"v*\"{hint}")
        elif entry.text not in found:
            found.append(entry.text)
    return tuple(found), problems


def parse_flag(values: Mapping[str, Any], name: str, problems: list[str]) -> bool:
    raw = _text(values, name).lower()
    if raw in ("", "false", "no", "0", "off"):
        return False
    if raw in ("true", "yes", "1", "on"):
        return True
    problems.append(f"{name} must be true or false, got '{_text(values, name)}'")
    return False


def parse_cache_from(entries: Sequence[Entry], package: str) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """CACHE_FROM: `tag` (this package) or `image:tag` (another package of the workspace) entries."""
    found: list[tuple[str, str]] = []
    problems = []
    for entry in entries:
        name, tag = split_name_and_tag(entry.text)
        if tag is None:
            name, tag = package, entry.text
        why = (repository_name_problem(name) or tag_problem(tag) if "/" not in name
               else "give image:tag or tag, without a workspace")
        if why:
            problems.append(f"{entry.label} is not a tag or image:tag of this workspace: {why}")
        elif (name, tag) not in found:
            found.append((name, tag))
    return tuple(found), problems


def parse_bounded_int(values: Mapping[str, Any], name: str, default: int, low: int, high: int,
                      problems: list[str], what: str) -> int:
    raw = _text(values, name)
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        problems.append(f"{name} must be a whole number from {low} to {high} ({what}), got '{raw}'")
        return default
    return int(raw)


PLATFORM = re.compile(r"[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?\Z")


def parse_platforms(entries: Sequence[Entry]) -> tuple[tuple[str, ...], list[str]]:
    """PLATFORMS: `os/arch[/variant]` entries (as text, separated by commas or spaces, as docker's --platform)."""
    found: list[str] = []
    problems = []
    for entry in entries:
        platform = entry.text.lower()
        if not PLATFORM.match(platform):
            hint = "; one platform per list item" if entry.listed and "," in platform else ""
            problems.append(f"{entry.label} is not os/architecture[/variant], e.g. linux/amd64 or "
                            f"linux/arm64/v8{hint}")
        elif platform not in found:
            found.append(platform)
    return tuple(found), problems


def resolve_archive(raw: str, clone_dir: str) -> str:
    """IMAGE_ARCHIVE is relative to the clone directory (Pipelines' BITBUCKET_CLONE_DIR, else here)."""
    return os.path.normpath(os.path.join(clone_dir or os.getcwd(), os.path.expanduser(raw)))


def parse_source(values: Mapping[str, Any], registry: str, repository: str,
                 problems: list[str]) -> SourceSettings | None:
    """SOURCE_IMAGE and its credentials; `repository` is the destination's (workspace/package)."""
    raw = _text(values, "SOURCE_IMAGE")
    username = _text(values, "SOURCE_USERNAME")
    password = str(values.get("SOURCE_PASSWORD") or "").strip()
    ca_file = _text(values, "SOURCE_CA_FILE") or None
    if not raw:
        given = [name for name, value in (("SOURCE_USERNAME", username), ("SOURCE_PASSWORD", password),
                                          ("SOURCE_CA_FILE", ca_file)) if value]
        if given:
            problems.append(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} set without SOURCE_IMAGE: "
                            "set SOURCE_IMAGE to the image to copy, or remove them")
        return None
    reference, reference_problems = parse_source_image(raw, registry, repository)
    problems += reference_problems
    if bool(username) != bool(password):
        missing, present = ("SOURCE_PASSWORD", "SOURCE_USERNAME") if username else ("SOURCE_USERNAME",
                                                                                    "SOURCE_PASSWORD")
        problems.append(f"{present} is set without {missing}: give both to log in to the source registry, or "
                        "neither (the pipe's own credentials on the same registry, else anonymous)")
    if ca_file and not os.path.isfile(ca_file):
        problems.append(f"SOURCE_CA_FILE '{ca_file}' is not a file: give the path of a PEM file of CA certificates")
    if reference is None:
        return None
    return SourceSettings(reference, username, Secret(password), ca_file)


def parse_image(values: Mapping[str, Any], problems: list[str]) -> ImageName | None:
    raw = _text(values, "IMAGE_NAME")
    if not raw:
        problems.append("IMAGE_NAME is required: the local image to push, e.g. my-container-app or "
                        "my-container-app:1.0")
        return None
    image, image_problems = parse_image_name(raw)
    problems += image_problems
    return image


def parse_workspace(values: Mapping[str, Any], image: ImageName | None, problems: list[str]) -> tuple[str, str]:
    """WORKSPACE, else BITBUCKET_WORKSPACE, else the one IMAGE_NAME names; and which variable gave it."""
    for name in ("WORKSPACE", "BITBUCKET_WORKSPACE"):
        workspace = _text(values, name)
        if workspace:
            why = repository_name_problem(workspace) if "/" not in workspace else "it must be one slug, without '/'"
            if why:
                problems.append(f"{name} '{workspace}' is not a valid workspace slug: {why}")
            return workspace, name
    if image is not None and image.registry is not None:
        return image.workspace or "", "BITBUCKET_WORKSPACE"
    problems.append("WORKSPACE is missing: set WORKSPACE to your workspace slug or run inside Bitbucket Pipelines")
    return "", "BITBUCKET_WORKSPACE"


def parse_credentials(values: Mapping[str, Any], problems: list[str]) -> tuple[str, Secret]:
    username = _text(values, "BITBUCKET_PACKAGES_USERNAME")
    if not username:
        problems.append("BITBUCKET_PACKAGES_USERNAME is missing: Bitbucket Pipelines provides it; outside Pipelines "
                        "set it to your registry user")
    token = str(values.get("BITBUCKET_PACKAGES_TOKEN") or "")
    if not token.strip():
        problems.append("BITBUCKET_PACKAGES_TOKEN is missing: Bitbucket Pipelines provides it; outside Pipelines set "
                        "it to your registry token")
    return username, Secret(token)


def parse_registry(values: Mapping[str, Any], problems: list[str]) -> str:
    registry = _text(values, "REGISTRY") or DEFAULT_REGISTRY
    why = registry_problem(registry)
    if why:
        problems.append(f"REGISTRY '{registry}' is not valid: {why}")
    return registry


def parse_ca_file(values: Mapping[str, Any], problems: list[str]) -> str | None:
    ca_file = _text(values, "REGISTRY_CA_FILE") or None
    if ca_file and not os.path.isfile(ca_file):
        problems.append(f"REGISTRY_CA_FILE '{ca_file}' is not a file: give the path of a PEM file of CA certificates")
    return ca_file


def parse_archive(values: Mapping[str, Any], problems: list[str]) -> str | None:
    """IMAGE_ARCHIVE, resolved against the clone directory (SOURCE_IMAGE set too is a conflict)."""
    raw = _text(values, "IMAGE_ARCHIVE")
    archive = resolve_archive(raw, _text(values, "BITBUCKET_CLONE_DIR")) if raw else None
    if archive is not None and not _text(values, "SOURCE_IMAGE") and not os.path.exists(archive):
        problems.append(f"IMAGE_ARCHIVE '{raw}' does not exist (looked for {archive}): give its path relative to "
                        "the clone directory, and when an earlier step made it, list it under that step's "
                        "`artifacts`")
    return archive


def parse_tuning(values: Mapping[str, Any], problems: list[str]) -> tuple[int, int, int]:
    """COMPRESSION_LEVEL, UPLOAD_PARALLELISM and CHUNK_SIZE_MB (in bytes)."""
    level = parse_bounded_int(values, "COMPRESSION_LEVEL", DEFAULT_LEVEL, 0, 3, problems,
                              "gzip effort of the native engine; 1 is fastest end to end")
    parallelism = parse_bounded_int(values, "UPLOAD_PARALLELISM", DEFAULT_PARALLELISM, 1, 16, problems,
                                    "layers uploaded at once")
    chunk_mb = parse_bounded_int(values, "CHUNK_SIZE_MB", COPY_CHUNK_MB if _text(values, "SOURCE_IMAGE") else
                                 DEFAULT_CHUNK_MB, 1, 256, problems, "MiB per upload request")
    return level, parallelism, chunk_mb * 1024 * 1024


def conflicts(values: Mapping[str, Any], image: ImageName | None, *, registry: str, workspace: str,
              workspace_source: str, engine: str, archive: str | None, platforms: tuple[str, ...]) -> list[str]:
    """The rules between variables, each checked once every variable is parsed on its own."""
    problems = []
    engine_given, copying = _text(values, "PUSH_ENGINE"), bool(_text(values, "SOURCE_IMAGE"))
    if image is not None and image.registry is not None and (image.registry, image.workspace) != (registry,
                                                                                                  workspace):
        problems.append(
            f"IMAGE_NAME '{_text(values, 'IMAGE_NAME')}' names registry {image.registry} and workspace "
            f"{image.workspace}, but the pipe pushes to registry {registry} (REGISTRY) and workspace {workspace} "
            f"({workspace_source}): make them agree, or give IMAGE_NAME as the local name only")
    if archive is not None and not copying and engine == "docker" and engine_given:
        problems.append("IMAGE_ARCHIVE is pushed by the native engine only (no Docker daemon is used): remove "
                        "PUSH_ENGINE=docker, or remove IMAGE_ARCHIVE to push an image the daemon holds")
    if copying and archive is not None:
        problems.append("SOURCE_IMAGE and IMAGE_ARCHIVE are both set: the pipe copies from a registry or pushes "
                        "an archive, not both; remove one")
    if copying and (engine_given or "native").lower() == "docker":
        problems.append("SOURCE_IMAGE is copied by the native engine (no Docker daemon is used): remove "
                        "PUSH_ENGINE=docker")
    if platforms and engine == "docker" and archive is None and not copying:
        problems.append("PLATFORMS keeps some platforms of a multi-platform image, but the daemon's push "
                        "(PUSH_ENGINE=docker) sends every platform the image has: remove PUSH_ENGINE=docker (the "
                        "native engine rebuilds the index with just those platforms), or remove PLATFORMS")
    return problems


def name_length_problem(settings: Settings) -> str | None:
    if len(settings.destination.repository) - len(settings.registry) - 1 > NAME_TOTAL_MAX:
        return (f"the pushed name '{settings.workspace}/{settings.image.name}' is longer than {NAME_TOTAL_MAX} "
                "characters: use a shorter IMAGE_NAME")
    return None


def parse_settings(values: Mapping[str, Any]) -> Settings:
    """Check every variable; return Settings or raise InvalidVariables naming each problem."""
    problems: list[str] = []
    debug = parse_flag(values, "DEBUG", problems)
    image = parse_image(values, problems)
    listed = {name: entries(values, name, "," if name == "PLATFORMS" else "") for name in LIST_VARIABLES}
    for _, list_problems in listed.values():
        problems += list_problems
    expanded = expand_tags(listed["TAGS"][0], image.tag if image else "latest", BuildValues.of(values))
    problems += expanded.problems
    protect_tags, protect_problems = parse_protect_tags(listed["PROTECT_TAGS"][0])
    problems += protect_problems
    dry_run = parse_flag(values, "DRY_RUN", problems)
    workspace, workspace_source = parse_workspace(values, image, problems)
    username, token = parse_credentials(values, problems)
    registry = parse_registry(values, problems)
    engine = (_text(values, "PUSH_ENGINE") or "auto").lower()
    if engine not in ENGINES:
        problems.append(f"PUSH_ENGINE must be auto, native or docker, got '{engine}'")
    cache_from, cache_problems = parse_cache_from(listed["CACHE_FROM"][0], image.name if image else "")
    problems += cache_problems
    level, parallelism, chunk_size = parse_tuning(values, problems)
    ca_file = parse_ca_file(values, problems)
    archive = parse_archive(values, problems)
    platforms, platform_problems = parse_platforms(listed["PLATFORMS"][0])
    problems += platform_problems
    source = parse_source(values, registry, f"{workspace}/{image.name if image else ''}", problems)
    problems += conflicts(values, image, registry=registry, workspace=workspace, workspace_source=workspace_source,
                          engine=engine, archive=archive, platforms=platforms)
    if image is not None and not problems:
        settings = Settings(
            image=image, tags=tuple(expanded.tags), workspace=workspace, username=username, token=token,
            registry=registry, debug=debug, shared_storage_dir=_text(values, "BITBUCKET_PIPE_SHARED_STORAGE_DIR")
            or None, engine=engine, cache_from=cache_from, compression_level=level, parallelism=parallelism,
            chunk_size=chunk_size, ca_file=ca_file, archive=archive,
            archive_shown=_text(values, "IMAGE_ARCHIVE") or None, platforms=platforms, source=source,
            tag_notes=tuple(expanded.notes), protect_tags=protect_tags, dry_run=dry_run)
        length = name_length_problem(settings)
        if length is None:
            return settings
        problems.append(length)
    raise InvalidVariables(problems)
