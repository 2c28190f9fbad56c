"""The pipe's variables: the cerberus schema, and parsing them into `Settings` with every problem named.

Pure functions only: `parse_settings` takes the variables already normalised by the schema and
either returns `Settings` or raises `InvalidVariables` listing *all* problems at once, so a user
fixes their step in one go instead of one failed run per mistake.
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

_TEXT = {"type": "string", "required": False, "nullable": True}

# Every text variable is optional for cerberus: presence and grammar are checked by
# parse_settings, which reports all problems together in words a pipe user can act on.
SCHEMA: dict[str, dict[str, Any]] = {
    "IMAGE_NAME": dict(_TEXT),
    "TAGS": dict(_TEXT),
    "WORKSPACE": dict(_TEXT),
    "BITBUCKET_WORKSPACE": dict(_TEXT),
    "BITBUCKET_PACKAGES_USERNAME": dict(_TEXT),
    "BITBUCKET_PACKAGES_TOKEN": dict(_TEXT),
    "REGISTRY": {"type": "string", "required": False, "nullable": True, "default": DEFAULT_REGISTRY},
    "BITBUCKET_PIPE_SHARED_STORAGE_DIR": dict(_TEXT),
    "DEBUG": {"type": "boolean", "required": False, "nullable": True, "default": False},
    "PUSH_ENGINE": dict(_TEXT),
    "CACHE_FROM": dict(_TEXT),
    "COMPRESSION_LEVEL": dict(_TEXT),
    "UPLOAD_PARALLELISM": dict(_TEXT),
    "CHUNK_SIZE_MB": dict(_TEXT),
    "REGISTRY_CA_FILE": dict(_TEXT),
    "IMAGE_ARCHIVE": dict(_TEXT),
    "PLATFORMS": dict(_TEXT),
    "BITBUCKET_CLONE_DIR": dict(_TEXT),
    "SOURCE_IMAGE": dict(_TEXT),
    "SOURCE_USERNAME": dict(_TEXT),
    "SOURCE_PASSWORD": dict(_TEXT),
    "SOURCE_CA_FILE": dict(_TEXT),
    "PROTECT_TAGS": dict(_TEXT),
    "DRY_RUN": dict(_TEXT),
    # The step's own variables, for the placeholders of TAGS (tag_templates.py).
    "BITBUCKET_BRANCH": dict(_TEXT),
    "BITBUCKET_TAG": dict(_TEXT),
    "BITBUCKET_COMMIT": dict(_TEXT),
    "BITBUCKET_BUILD_NUMBER": dict(_TEXT),
}

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


def schema_problems(errors: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """Cerberus errors (only types can fail with SCHEMA) in the same words as the other problems."""
    problems = []
    for name in sorted(errors):
        if name == "DEBUG":
            problems.append(f"DEBUG must be true or false, got {values.get('DEBUG')!r}")
        else:
            problems.append(f"{name}: {'; '.join(str(e) for e in errors[name])}")
    return problems


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
    if _text(values, "IMAGE_ARCHIVE"):
        problems.append("SOURCE_IMAGE and IMAGE_ARCHIVE are both set: the pipe copies from a registry or pushes "
                        "an archive, not both; remove one")
    if (_text(values, "PUSH_ENGINE") or "native").lower() == "docker":
        problems.append("SOURCE_IMAGE is copied by the native engine (no Docker daemon is used): remove "
                        "PUSH_ENGINE=docker")
    if reference is None:
        return None
    return SourceSettings(reference, username, Secret(password), ca_file)


def parse_debug(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))


def parse_settings(values: Mapping[str, Any]) -> Settings:
    """Check every variable; return Settings or raise InvalidVariables naming each problem."""
    problems: list[str] = []

    image = None
    image_value = _text(values, "IMAGE_NAME")
    if not image_value:
        problems.append("IMAGE_NAME is required: the local image to push, e.g. my-container-app or "
                        "my-container-app:1.0")
    else:
        image, image_problems = parse_image_name(image_value)
        problems += image_problems

    listed = {name: entries(values, name, "," if name == "PLATFORMS" else "") for name in LIST_VARIABLES}
    for _, list_problems in listed.values():
        problems += list_problems
    expanded = expand_tags(listed["TAGS"][0], image.tag if image else "latest", BuildValues.of(values))
    problems += expanded.problems
    protect_tags, protect_problems = parse_protect_tags(listed["PROTECT_TAGS"][0])
    problems += protect_problems
    dry_run = parse_flag(values, "DRY_RUN", problems)

    workspace = _text(values, "WORKSPACE")
    workspace_source = "WORKSPACE"
    if not workspace:
        workspace = _text(values, "BITBUCKET_WORKSPACE")
        workspace_source = "BITBUCKET_WORKSPACE"
    if not workspace:
        problems.append("WORKSPACE is missing: set WORKSPACE to your workspace slug or run inside Bitbucket Pipelines")
    else:
        why = repository_name_problem(workspace) if "/" not in workspace else "it must be one slug, without '/'"
        if why:
            problems.append(f"{workspace_source} '{workspace}' is not a valid workspace slug: {why}")

    username = _text(values, "BITBUCKET_PACKAGES_USERNAME")
    if not username:
        problems.append(
            "BITBUCKET_PACKAGES_USERNAME is missing: Bitbucket Pipelines provides it; outside Pipelines set it to your "
            "registry user"
        )
    token = values.get("BITBUCKET_PACKAGES_TOKEN") or ""
    if not str(token).strip():
        problems.append(
            "BITBUCKET_PACKAGES_TOKEN is missing: Bitbucket Pipelines provides it; outside Pipelines set it to your "
            "registry token"
        )

    registry = _text(values, "REGISTRY") or DEFAULT_REGISTRY
    why = registry_problem(registry)
    if why:
        problems.append(f"REGISTRY '{registry}' is not valid: {why}")

    if image is not None and image.registry is not None:
        if not workspace:
            problems = [p for p in problems if not p.startswith("WORKSPACE is missing")]
            workspace = image.workspace or ""
        if (image.registry, image.workspace) != (registry, workspace):
            problems.append(
                f"IMAGE_NAME '{image_value}' names registry {image.registry} and workspace {image.workspace}, but the "
                f"pipe pushes to registry {registry} (REGISTRY) and workspace {workspace} ({workspace_source}): make "
                "them agree, or give IMAGE_NAME as the local name only"
            )

    engine = (_text(values, "PUSH_ENGINE") or "auto").lower()
    if engine not in ENGINES:
        problems.append(f"PUSH_ENGINE must be auto, native or docker, got '{engine}'")
    cache_from, cache_problems = parse_cache_from(listed["CACHE_FROM"][0], image.name if image else "")
    problems += cache_problems
    level = parse_bounded_int(values, "COMPRESSION_LEVEL", DEFAULT_LEVEL, 0, 3, problems,
                              "gzip effort of the native engine; 1 is fastest end to end")
    parallelism = parse_bounded_int(values, "UPLOAD_PARALLELISM", DEFAULT_PARALLELISM, 1, 16, problems,
                                    "layers uploaded at once")
    chunk_mb = parse_bounded_int(values, "CHUNK_SIZE_MB", COPY_CHUNK_MB if _text(values, "SOURCE_IMAGE") else
                                 DEFAULT_CHUNK_MB, 1, 256, problems, "MiB per upload request")
    ca_file = _text(values, "REGISTRY_CA_FILE") or None
    if ca_file and not os.path.isfile(ca_file):
        problems.append(f"REGISTRY_CA_FILE '{ca_file}' is not a file: give the path of a PEM file of CA certificates")

    archive_raw = _text(values, "IMAGE_ARCHIVE")
    archive = resolve_archive(archive_raw, _text(values, "BITBUCKET_CLONE_DIR")) if archive_raw else None
    if archive is not None and not _text(values, "SOURCE_IMAGE"):
        if engine == "docker" and _text(values, "PUSH_ENGINE"):
            problems.append("IMAGE_ARCHIVE is pushed by the native engine only (no Docker daemon is used): remove "
                            "PUSH_ENGINE=docker, or remove IMAGE_ARCHIVE to push an image the daemon holds")
        if not os.path.exists(archive):
            problems.append(f"IMAGE_ARCHIVE '{archive_raw}' does not exist (looked for {archive}): give its path "
                            "relative to the clone directory, and when an earlier step made it, list it under that "
                            "step's `artifacts`")
    platforms, platform_problems = parse_platforms(listed["PLATFORMS"][0])
    problems += platform_problems
    source = parse_source(values, registry, f"{workspace}/{image.name if image else ''}", problems)
    if platforms and engine == "docker" and archive is None and not _text(values, "SOURCE_IMAGE"):
        problems.append("PLATFORMS keeps some platforms of a multi-platform image, but the daemon's push "
                        "(PUSH_ENGINE=docker) sends every platform the image has: remove PUSH_ENGINE=docker (the "
                        "native engine rebuilds the index with just those platforms), or remove PLATFORMS")

    if image and not problems:
        repository = Destination(registry, workspace, image.name).repository
        if len(repository) - len(registry) - 1 > NAME_TOTAL_MAX:
            problems.append(
                f"the pushed name '{workspace}/{image.name}' is longer than {NAME_TOTAL_MAX} characters: use a "
                "shorter IMAGE_NAME"
            )

    if problems:
        raise InvalidVariables(problems)
    assert image is not None
    return Settings(
        image=image,
        tags=tuple(expanded.tags),
        workspace=workspace,
        username=username,
        token=Secret(str(token)),
        registry=registry,
        debug=parse_debug(values.get("DEBUG")),
        shared_storage_dir=_text(values, "BITBUCKET_PIPE_SHARED_STORAGE_DIR") or None,
        engine=engine,
        cache_from=cache_from,
        compression_level=level,
        parallelism=parallelism,
        chunk_size=chunk_mb * 1024 * 1024,
        ca_file=ca_file,
        archive=archive,
        archive_shown=archive_raw or None,
        platforms=platforms,
        source=source,
        tag_notes=tuple(expanded.notes),
        protect_tags=protect_tags,
        dry_run=dry_run,
    )
