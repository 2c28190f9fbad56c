"""Image references: the docker/OCI reference grammar, and the references the pipe pushes.

Pure functions only (no daemon, no network), so every rule here is unit-tested directly.
The grammar follows github.com/distribution/reference:

    path-component := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    name           := path-component ('/' path-component)*      (at most 255 characters in all)
    tag            := [\\w][\\w.-]{0,127}
    domain         := domain-component ('.' domain-component)* (':' port)?
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = re.compile(rf"(?:{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::(?P<port>[0-9]+))?")
DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}")

NAME_TOTAL_MAX = 255
DEFAULT_TAG = "latest"

COMPONENT_RULE = "lowercase letters and digits, optionally joined by '.', '_', '__' or '-'"
TAG_RULE = "up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"


def split_name_and_tag(value: str) -> tuple[str, str | None]:
    """Split `name[:tag]`; the tag is what follows the last ':' after the last '/'."""
    slash = value.rfind("/")
    colon = value.rfind(":")
    if colon > slash:
        return value[:colon], value[colon + 1:]
    return value, None


def looks_like_domain(component: str) -> bool:
    """Docker's own rule for the first part of a name: a registry host, not a path."""
    return bool(DOMAIN.fullmatch(component)) and ("." in component or ":" in component or component == "localhost")


def repository_name_problem(name: str) -> str | None:
    """Why `name` is not a valid repository name, or None when it is."""
    if not name:
        return "the name is empty"
    for component in name.split("/"):
        if not PATH_COMPONENT.fullmatch(component):
            if component.lower() != component and PATH_COMPONENT.fullmatch(component.lower()):
                return f"'{component}' must be lowercase"
            return f"'{component}' is not valid: use {COMPONENT_RULE}, with '/' between parts"
    if len(name) > NAME_TOTAL_MAX:
        return f"the name is {len(name)} characters; the limit is {NAME_TOTAL_MAX}"
    return None


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a valid tag, or None when it is."""
    if TAG.fullmatch(tag):
        return None
    return f"a tag is {TAG_RULE}"


def registry_problem(registry: str) -> str | None:
    """Why REGISTRY is not a `host[:port]`, or None when it is."""
    if "://" in registry or "/" in registry:
        return "give host[:port] only, without a scheme or a path, e.g. crg.apkg.io or 127.0.0.1:5000"
    match = DOMAIN.fullmatch(registry)
    if not match:
        return "not a valid host[:port], e.g. crg.apkg.io or 127.0.0.1:5000"
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return f"port {port} is out of range"
    return None


@dataclass(frozen=True)
class ImageName:
    """A local image as given in IMAGE_NAME: `name` is also the package name in the registry.

    `registry` and `workspace` are set when IMAGE_NAME is a full reference (`crg.apkg.io/ws/name:tag`,
    as the seed's own `docker build` example tags images); the local image is then that reference.
    """

    name: str
    tag: str
    registry: str | None = None
    workspace: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.registry}/{self.workspace}/" if self.registry else ""
        return f"{prefix}{self.name}:{self.tag}"


def parse_image_name(value: str) -> tuple[ImageName | None, list[str]]:
    """Parse IMAGE_NAME into (image, problems); image is None when there are problems."""
    if "@" in value:
        return None, [f"IMAGE_NAME '{value}' has a digest: give the local image as name or name:tag"]
    name, tag = split_name_and_tag(value)
    problems = []
    registry = workspace = None
    first = name.split("/")[0]
    if "/" in name and looks_like_domain(first):
        parts = name.split("/")
        if len(parts) < 3:
            problems.append(
                f"IMAGE_NAME '{value}' names a registry host but no workspace: give REGISTRY/WORKSPACE/NAME[:TAG], "
                f"e.g. {first}/my-workspace/{parts[-1]}:{tag or DEFAULT_TAG}, or the local name only"
            )
        else:
            registry, workspace, name = first, parts[1], "/".join(parts[2:])
            for label, part in (("workspace", workspace), ("image name", name)):
                why = repository_name_problem(part)
                if why:
                    problems.append(f"IMAGE_NAME '{value}' has an invalid {label} '{part}': {why}")
    else:
        why = repository_name_problem(name)
        if why:
            problems.append(f"IMAGE_NAME '{value}' is not a valid image name: {why}")
    if tag is not None:
        why = tag_problem(tag)
        if why:
            problems.append(f"IMAGE_NAME '{value}' has an invalid tag '{tag}': {why}")
    if problems:
        return None, problems
    return ImageName(name, tag or DEFAULT_TAG, registry, workspace), []


@dataclass(frozen=True)
class Destination:
    """Where the pipe pushes: `<registry>/<workspace>/<name>`."""

    registry: str
    workspace: str
    name: str

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.workspace}/{self.name}"

    def reference(self, tag: str) -> str:
        return f"{self.repository}:{tag}"

    def reference_by_digest(self, digest: str) -> str:
        return f"{self.repository}@{digest}"


DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"  # where docker sends docker.io's API requests
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")  # all Docker Hub to docker


@dataclass(frozen=True)
class SourceReference:
    """SOURCE_IMAGE: an image already in a registry, as docker reads a reference.

    A name without a registry host is Docker Hub's (`nginx` is `docker.io/library/nginx`); `:tag` or
    `@digest` alone names the destination package itself (`same_package`), filled in by the caller.
    """

    registry: str  # host[:port] as written (docker.io for Docker Hub)
    repository: str
    tag: str | None
    digest: str | None
    shown: str  # as the user wrote it, for messages and the output file
    implicit_registry: bool = False  # no host was written: Docker Hub by docker's rule

    @property
    def endpoint(self) -> str:
        """The host[:port] the API requests go to."""
        return DOCKER_HUB_ENDPOINT if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What the manifest is asked for: the digest when given (it wins over a tag), else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        suffix = f"@{self.digest}" if self.digest else f":{self.tag or DEFAULT_TAG}"
        return f"{self.registry}/{self.repository}{suffix}"


def parse_source_image(value: str, registry: str, repository: str) -> tuple[SourceReference | None, list[str]]:
    """Parse SOURCE_IMAGE; `registry` and `repository` are the destination's, for the `:tag` short form."""
    shown = value
    if "://" in value:
        return None, [f"SOURCE_IMAGE '{shown}' has a URL scheme: give host[:port]/path:tag without it, e.g. "
                      f"{value.split('://', 1)[1]}"]
    name, _, digest = value.partition("@")
    problems = []
    if digest and not DIGEST.fullmatch(digest):
        problems.append(f"SOURCE_IMAGE '{shown}' has an invalid digest '{digest}': give sha256: and 64 hex digits")
    name, tag = split_name_and_tag(name)
    if tag is not None and tag_problem(tag):
        problems.append(f"SOURCE_IMAGE '{shown}' has an invalid tag '{tag}': {tag_problem(tag)}")
    implicit = False
    if not name:  # ":tag" or "@sha256:...": the destination package at another tag or digest
        if tag is None and not digest:
            problems.append(f"SOURCE_IMAGE '{shown}' names no image: give registry/path:tag, or :tag for another "
                            "tag of IMAGE_NAME's package")
        host, path = registry, repository
    else:
        first, _, rest = name.partition("/")
        if rest and looks_like_domain(first):
            host, path = (DOCKER_HUB if first in DOCKER_HUB_ALIASES else first), rest
            why = registry_problem(host)
            if why:
                problems.append(f"SOURCE_IMAGE '{shown}' has an invalid registry '{host}': {why}")
        else:
            host, path, implicit = DOCKER_HUB, name, True
        if host == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"  # Docker Hub's official images
        why = repository_name_problem(path)
        if why:
            problems.append(f"SOURCE_IMAGE '{shown}' is not a valid image reference: {why}")
    if problems:
        return None, problems
    return SourceReference(host, path, tag, digest or None, shown, implicit), []
