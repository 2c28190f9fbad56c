"""What went wrong, in words a person can act on.

A failure has a `Kind`; the `*_message` functions turn a kind into one line naming the cause and the
fix, followed by the registry's own words verbatim. The native engine reads the kind off the HTTP
status and the OCI error code (`client/answers.py`); the Docker daemon's text is classified by
`daemon/words.py`. Both look first for crg.apkg.io's own words (`REGISTRY_WORDS`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Callable, TypeVar

from .token_kinds import TokenKind

T = TypeVar("T")

# The documented limits of crg.apkg.io, quoted in messages (the registry's own text follows them).
LAYER_LIMIT_TEXT = "32 GB per layer"
UPLOAD_TIME_LIMIT_TEXT = "7 minutes per upload"


def capital(text: str) -> str:
    """A message part that opens a sentence (a layer's label, an archive's description)."""
    return text[:1].upper() + text[1:]


class Kind(Enum):
    CREDENTIALS_EXPIRED = "pipeline credentials expired"
    SCOPE_MISSING = "token without the write scope"
    OTHER_REPOSITORY = "pipeline credentials of another repository"
    TAG_IMMUTABLE = "immutable tag"
    LAYER_TOO_LARGE = "layer too large"
    UPLOAD_TIME_LIMIT = "upload over the registry's time limit"
    DENIED = "denied"
    NAME_UNKNOWN = "name unknown"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "too many requests"
    SERVER_ERROR = "server error"
    UNREACHABLE = "unreachable"
    CONNECTION_LOST = "connection lost"
    TIMEOUT = "timeout"
    OTHER = "other"


def any_of(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# crg.apkg.io's own words for the cases the distribution spec has no code of their own for: they
# arrive as `unauthorized` or `denied` (or an unknown upload), so both engines look for them first.
REGISTRY_WORDS: list[tuple[Kind, re.Pattern[str]]] = [
    # An immutable tag refused: crg.apkg.io's wording is not public; the emulator, ECR ("because the tag is
    # immutable", TAG_INVALID), Harbor ("configured as immutable", 412) and Docker Hub ("immutability
    # settings", DENIED) all say the word.
    (Kind.TAG_IMMUTABLE, any_of(r"\bimmutab(?:le|ility)\b")),
    (Kind.CREDENTIALS_EXPIRED, any_of(r"pipeline credentials expired", r"credentials (?:have )?expired")),
    (Kind.SCOPE_MISSING, any_of(r"lacks the write:package:bitbucket scope",
                                r"needs? the write:package:bitbucket scope")),
    (Kind.OTHER_REPOSITORY, any_of(r"pipeline credentials for repository \S+ reach only its packages")),
    (Kind.UPLOAD_TIME_LIMIT, any_of(r"session expired", r"must finish within")),
]


def registry_words(message: str) -> Kind | None:
    """The kind crg.apkg.io's wording gives a refusal, if it is one of its own cases."""
    return next((kind for kind, pattern in REGISTRY_WORDS if pattern.search(message)), None)


@dataclass(frozen=True)
class RegistryError:
    """A classified failure: `detail` is the daemon's/registry's text, verbatim."""

    kind: Kind
    detail: str
    transient: bool
    retry_after: float | None = None


class PipeFailure(Exception):
    """The pipe cannot go on; `str()` is the one line shown to the user."""


class RegistryFailure(Exception):
    """A classified registry error from a login or a push; retried when transient, worded by the caller."""

    def __init__(self, error: RegistryError, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(error.detail)
        self.error = error
        self.status = status  # the HTTP status, when the failure was an answer (native engine)
        self.attempts = attempts  # how many times it was tried before it was given up

    @property
    def transient(self) -> bool:
        return self.error.transient

    @property
    def retry_after(self) -> float | None:
        return self.error.retry_after


class NotUnderstood(Exception):
    """The registry answered the native engine in a way it does not understand: push with the daemon."""


def worded(operation: Callable[[], T], describe: Callable[[RegistryError], str], fallback: bool = True) -> T:
    """A registry failure in words; an answer the native engine does not understand goes to the daemon
    (`fallback`; the daemon's own push words it)."""
    try:
        return operation()
    except RegistryFailure as exc:
        if fallback and exc.error.kind is Kind.OTHER and exc.status is not None:
            raise NotUnderstood(f"HTTP {exc.status}: {exc.error.detail}") from exc
        raise PipeFailure(describe(exc.error) + attempts_suffix(exc.attempts)) from exc


def not_understood_message(detail: NotUnderstood, *, dry_run: bool, daemon: bool) -> str:
    """The native engine could not go on, and the daemon's push cannot take over (`daemon`: there is one,
    and the push is real: then this is the warning that it takes over)."""
    if dry_run:
        return (f"Dry run: the registry answered in a way the pipe does not understand ({detail}); nothing was "
                "written. Please report this answer")
    if not daemon:
        return (f"The registry answered the push in a way the pipe does not understand ({detail}); with "
                "IMAGE_ARCHIVE or SOURCE_IMAGE there is no Docker daemon to push through instead. Please report "
                "this answer")
    return (f"The registry answered the native push in a way it does not understand ({detail}); pushing once more "
            "through the Docker daemon (PUSH_ENGINE=docker). Please report this answer.")


def no_push_granted_message(*, registry: str, username: str, workspace: str, package: str) -> str:
    return (f"Dry run: {registry} grants user {username} no push on {workspace}/{package}: the package {package} may "
            f"not exist in workspace {workspace} (create it and link it to a repository), or these credentials lack "
            "push permission on the repository it is linked to")


def protect_unknown_message(registry: str, detail: RegistryFailure) -> str:
    return (f"PROTECT_TAGS needs to know what the tags hold, but {registry} could not be asked ({detail}): nothing "
            "was pushed")


def output_unwritten_message(directory: str, detail: OSError) -> str:
    return f"Pushed, but could not write the output file in BITBUCKET_PIPE_SHARED_STORAGE_DIR={directory}: {detail}"


def no_daemon_message(docker_host: str | None, detail: str) -> str:
    if docker_host:
        return (f"Cannot connect to the Docker daemon at DOCKER_HOST={docker_host}: add `services: [docker]` to this "
                f"step in bitbucket-pipelines.yml, or check DOCKER_HOST (error: {detail})")
    return ("Cannot connect to the Docker daemon at the local socket: add `services: [docker]` to this step in "
            f"bitbucket-pipelines.yml (outside Pipelines: start Docker or set DOCKER_HOST) (error: {detail})")


def image_missing_message(image: str) -> str:
    return (f"Image {image} not found in the Docker daemon: build it earlier in the same step with "
            f"`docker build -t {image} .` (each step starts with an empty Docker daemon)")


def daemon_lost_message(action: str, detail: str) -> str:
    return (f"Lost the connection to the Docker daemon while {action}: check the docker service of this step "
            f"(error: {detail})")


def blob_too_large_message(label: str, size: int, limit: int, how: str) -> str:
    gib = 1024 ** 3
    return (f"{capital(label)} is {size / gib:.1f} GiB {how}, over the registry's limit of "
            f"{limit / gib:g} GiB per layer: split it into smaller layers (e.g. several COPY or RUN steps)")


def attempts_suffix(attempts: int) -> str:
    return f" [gave up after {attempts} attempts]" if attempts > 1 else ""


def _said(error: RegistryError) -> str:
    return f" (registry said: {error.detail})" if error.detail else ""


_LINKED_TO = re.compile(r"is linked to repository ([A-Za-z0-9._-]+)")


def _linked_repository(error: RegistryError) -> str:
    match = _LINKED_TO.search(error.detail)
    return match.group(1) if match else "another repository"


def _expired(username: str) -> str:
    return (f"the pipeline credentials of this step (user {username}) have expired: they are valid only while the step "
            f"runs; re-run the step to get new ones")


def _who(username: str) -> str:
    """What a refused login means for this kind of username."""
    if "@" in username:
        return (f"{username} is an Atlassian account email: check it for a typo, and that BITBUCKET_PACKAGES_TOKEN is "
                f"an API token created by that same account (a token works only with its own account's email)")
    return "check BITBUCKET_PACKAGES_USERNAME / BITBUCKET_PACKAGES_TOKEN"


def _refused_kind(kind: TokenKind) -> str:
    """What a refused login means when the token looks like a kind the registry does not take."""
    return (f"BITBUCKET_PACKAGES_TOKEN looks like {kind.name} (it begins {kind.prefix}), and {kind.refusal}; "
            f"create an Atlassian API token with the scopes read:package:bitbucket and write:package:bitbucket "
            f"and set it as BITBUCKET_PACKAGES_TOKEN, with that account's email as BITBUCKET_PACKAGES_USERNAME; "
            f"in Pipelines, dropping both from the pipe's variables uses the step's own credentials instead")


def login_failure_message(error: RegistryError, *, registry: str, username: str,
                          token_kind: TokenKind | None = None) -> str:
    """`token_kind`: what BITBUCKET_PACKAGES_TOKEN looks like when it is a kind the registry refuses."""
    if error.kind is Kind.CREDENTIALS_EXPIRED:
        return f"Login to {registry} refused: {_expired(username)}{_said(error)}"
    if error.kind in (Kind.UNAUTHORIZED, Kind.DENIED):
        why = _refused_kind(token_kind) if token_kind else _who(username)
        return f"Login to {registry} refused for user {username}: {why}{_said(error)}"
    if error.kind in (Kind.UNREACHABLE, Kind.CONNECTION_LOST, Kind.TIMEOUT):
        return _unreachable(error, registry)
    if error.kind in (Kind.SERVER_ERROR, Kind.RATE_LIMITED):
        return f"Login to {registry} failed: the registry is not answering normally, try again later{_said(error)}"
    return f"Login to {registry} failed for user {username}: {error.detail}"


def _unreachable(error: RegistryError, registry: str) -> str:
    return (f"Registry {registry} unreachable: check REGISTRY and that the step can reach it over the network "
            f"(error: {error.detail})")


IMMUTABLE_FIX = ("push a new tag instead (e.g. {commit:7} in TAGS), or ask a workspace admin to change the "
                 "workspace's Container settings")


def push_failure_message(error: RegistryError, *, reference: str, registry: str, workspace: str,
                         package: str, username: str) -> str:
    kind = error.kind
    if kind is Kind.CREDENTIALS_EXPIRED:
        return f"Push of {reference} unauthorized: {_expired(username)}{_said(error)}"
    if kind is Kind.SCOPE_MISSING:
        return (f"Push of {reference} denied: the API token of user {username} lacks the write:package:bitbucket "
                "scope; "
                f"create an API token with the scope write:package:bitbucket and set it as BITBUCKET_PACKAGES_TOKEN"
                f"{_said(error)}")
    if kind is Kind.OTHER_REPOSITORY:
        repository = _linked_repository(error)
        return (f"Push of {reference} denied: package {package} is linked to repository {repository}, and pipeline "
                f"credentials reach only the packages of the pipeline's own repository; push it from a pipeline of "
                f"{repository}, or use an API token with write:package:bitbucket of an account with write access to "
                f"{repository}{_said(error)}")
    if kind is Kind.TAG_IMMUTABLE:
        return (f"Push of {reference} refused: the tag is immutable, the workspace's immutable-tag settings protect "
                f"it; {IMMUTABLE_FIX}{_said(error)}")
    if kind is Kind.LAYER_TOO_LARGE:
        return (f"Push of {reference} refused: a layer is larger than the registry accepts ({LAYER_LIMIT_TEXT} on "
                f"Bitbucket); split the big layer, e.g. into several COPY/RUN steps or with a smaller build context. "
                f"Registry said: {error.detail}")
    if kind is Kind.UPLOAD_TIME_LIMIT:
        return (f"Push of {reference} timed out: an upload took longer than the registry allows "
                f"({UPLOAD_TIME_LIMIT_TEXT} "
                f"on Bitbucket); make the layers smaller or push over a faster network. Registry said: {error.detail}")
    if kind is Kind.TIMEOUT:
        return (f"Push of {reference} timed out: {registry} stopped answering during the upload; try again later, "
                f"and if it keeps happening make the layers smaller or push over a faster network "
                f"(error: {error.detail})")
    if kind is Kind.DENIED:
        return (f"Push of {reference} denied: the token of user {username} lacks push permission; it needs write "
                f"access on the repository that package {package} is linked to{_said(error)}")
    if kind is Kind.NAME_UNKNOWN:
        return (f"Push of {reference} refused: package {package} does not exist in workspace {workspace}; create it "
                f"in Bitbucket (Create > Package) and link it to a repository, then run the pipe again{_said(error)}")
    if kind is Kind.UNAUTHORIZED:
        return (f"Push of {reference} unauthorized: the registry did not accept user {username}; "
                f"{_who(username)}{_said(error)}")
    if kind is Kind.RATE_LIMITED:
        return f"Push of {reference} rate-limited by the registry: try again later{_said(error)}"
    if kind is Kind.SERVER_ERROR:
        return f"Push of {reference} failed: the registry answered with a server error, try again later{_said(error)}"
    if kind is Kind.UNREACHABLE:
        return _unreachable(error, registry)
    if kind is Kind.CONNECTION_LOST:
        return (f"Push of {reference} failed: the connection to {registry} was lost during the upload, "
                f"try again later (error: {error.detail})")
    return f"Push of {reference} failed: {error.detail}"


def source_failure_message(error: RegistryError, *, source: str, registry: str, repository: str, who: str,
                           hint: str = "") -> str:
    """A failure of the source registry (SOURCE_IMAGE), in its own terms: `who` says how the pipe logged
    in there (SOURCE_USERNAME=..., the pipe's own credentials, or anonymously); `hint` follows."""
    kind = error.kind
    if kind in (Kind.UNAUTHORIZED, Kind.DENIED, Kind.CREDENTIALS_EXPIRED, Kind.SCOPE_MISSING, Kind.OTHER_REPOSITORY):
        if who == "anonymously":
            fix = (f"it does not let anonymous users read {repository}: set SOURCE_USERNAME and SOURCE_PASSWORD "
                   "to an account of that registry that can")
        elif who.startswith("SOURCE_USERNAME"):
            fix = (f"check SOURCE_USERNAME / SOURCE_PASSWORD (they log in to the source registry, not to the "
                   f"destination) and that this account can read {repository}")
        else:
            fix = (f"these credentials cannot read {repository}; set SOURCE_USERNAME / SOURCE_PASSWORD to an "
                   "account that can")
        text = f"The source registry {registry} refused to let the pipe read {source} ({who}): {fix}{_said(error)}"
    elif kind is Kind.NAME_UNKNOWN:
        text = (f"Source image {source} not found: registry {registry} has no such tag or digest in {repository}, "
                f"or no repository {repository}{_said(error)}")
    elif kind in (Kind.UNREACHABLE, Kind.CONNECTION_LOST, Kind.TIMEOUT):
        text = (f"Source registry {registry} unreachable: check SOURCE_IMAGE (and SOURCE_CA_FILE for a private CA) "
                f"and that the step can reach it over the network (error: {error.detail})")
    elif kind is Kind.RATE_LIMITED:
        text = (f"The source registry {registry} rate-limited the copy of {source}: try again later, or log in "
                f"with SOURCE_USERNAME / SOURCE_PASSWORD (anonymous pulls get the lowest limit){_said(error)}")
    elif kind is Kind.SERVER_ERROR:
        text = (f"The source registry {registry} answered with a server error for {source}: try again later"
                f"{_said(error)}")
    else:
        text = f"Reading {source} from the source registry {registry} failed: {error.detail}"
    return text + (f". {hint}" if hint else "")
