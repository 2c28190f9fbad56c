"""SOURCE_IMAGE without a registry: the reference grammar (docker's rules), the variables' problems, who the
pipe is at the source, the Docker Hub hint, and a layer's first bytes against its media type."""
from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from pipe.oci import (
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    LABEL_BYTES,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    content_problem,
)
from pipe.references import parse_source_image
from pipe.source_choice import docker_hub_hint, source_login
from pipe.variables import InvalidVariables, parse_settings

DIGEST = "sha256:" + "ab" * 32
DEST_REGISTRY, DEST_REPOSITORY = "crg.apkg.io", "acme/my-container-app"
GOOD = {
    "IMAGE_NAME": "my-container-app",
    "WORKSPACE": "acme",
    "BITBUCKET_PACKAGES_USERNAME": "pipelines",
    "BITBUCKET_PACKAGES_TOKEN": "s3cr3t-token",
}


# -- the reference ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, registry, endpoint, repository, tag, digest, implicit", [
    ("docker.io/library/nginx:1.27", "docker.io", "registry-1.docker.io", "library/nginx", "1.27", None, False),
    ("nginx:1.27", "docker.io", "registry-1.docker.io", "library/nginx", "1.27", None, True),
    ("nginx", "docker.io", "registry-1.docker.io", "library/nginx", None, None, True),
    ("docker.io/nginx", "docker.io", "registry-1.docker.io", "library/nginx", None, None, False),
    ("index.docker.io/nginx:1", "docker.io", "registry-1.docker.io", "library/nginx", "1", None, False),
    ("bitnami/redis:7", "docker.io", "registry-1.docker.io", "bitnami/redis", "7", None, True),
    ("crg.apkg.io/acme/my-app:abc123", "crg.apkg.io", "crg.apkg.io", "acme/my-app", "abc123", None, False),
    ("localhost:5000/app:1", "localhost:5000", "localhost:5000", "app", "1", None, False),
    ("localhost/app", "localhost", "localhost", "app", None, None, False),
    (f"127.0.0.1:5000/acme/app@{DIGEST}", "127.0.0.1:5000", "127.0.0.1:5000", "acme/app", None, DIGEST, False),
    (f"ghcr.io/org/team/app:1@{DIGEST}", "ghcr.io", "ghcr.io", "org/team/app", "1", DIGEST, False),
    (":1.0", DEST_REGISTRY, DEST_REGISTRY, DEST_REPOSITORY, "1.0", None, False),
    (f"@{DIGEST}", DEST_REGISTRY, DEST_REGISTRY, DEST_REPOSITORY, None, DIGEST, False),
])
def test_a_reference_reads_as_docker_reads_it(value, registry, endpoint, repository, tag, digest, implicit):
    reference, problems = parse_source_image(value, DEST_REGISTRY, DEST_REPOSITORY)
    assert problems == []
    assert (reference.registry, reference.endpoint, reference.repository, reference.tag, reference.digest,
            reference.implicit_registry) == (registry, endpoint, repository, tag, digest, implicit)
    assert reference.shown == value
    assert reference.reference == (digest or tag or "latest"), "a digest wins over a tag"


def test_a_reference_prints_in_full():
    reference, _ = parse_source_image("nginx", DEST_REGISTRY, DEST_REPOSITORY)
    assert str(reference) == "docker.io/library/nginx:latest"
    reference, _ = parse_source_image(f":x@{DIGEST}", DEST_REGISTRY, DEST_REPOSITORY)
    assert str(reference) == f"crg.apkg.io/acme/my-container-app@{DIGEST}"


@pytest.mark.parametrize("value, words", [
    ("", ["names no image", ":tag"]),
    (":", ["invalid tag ''"]),
    (":Bad!", ["invalid tag 'Bad!'"]),
    ("@sha256:abc", ["invalid digest", "64 hex digits"]),
    ("Nginx:1", ["'Nginx' must be lowercase"]),
    ("host:99999/app:1", ["invalid registry 'host:99999'", "out of range"]),
    ("https://crg.apkg.io/acme/app:1", ["URL scheme", "crg.apkg.io/acme/app:1"]),
    ("crg.apkg.io/acme/App:1", ["'App' must be lowercase"]),
])
def test_a_bad_reference_names_its_problem(value, words):
    reference, problems = parse_source_image(value, DEST_REGISTRY, DEST_REPOSITORY)
    assert reference is None and len(problems) == 1, problems
    assert problems[0].startswith(f"SOURCE_IMAGE '{value}'")
    for word in words:
        assert word in problems[0], problems[0]


# -- the variables ---------------------------------------------------------------------------------------------

def problems_of(values: dict) -> list[str]:
    with pytest.raises(InvalidVariables) as caught:
        parse_settings(values)
    return caught.value.problems


def test_the_short_form_names_the_destination_package():
    settings = parse_settings({**GOOD, "REGISTRY": "127.0.0.1:5000", "SOURCE_IMAGE": ":1.0", "TAGS": "production"})
    reference = settings.source.reference
    assert (reference.registry, reference.repository, reference.tag) == ("127.0.0.1:5000", DEST_REPOSITORY, "1.0")
    assert settings.archive is None and settings.tags == ("production",)


def test_source_credentials_are_kept_secret():
    settings = parse_settings({**GOOD, "SOURCE_IMAGE": "ghcr.io/org/app:1", "SOURCE_USERNAME": "bot",
                               "SOURCE_PASSWORD": "hunter2-source", "PLATFORMS": "linux/arm64"})
    assert settings.source.username == "bot" and settings.source.password.reveal() == "hunter2-source"
    assert "hunter2-source" not in repr(settings) and "hunter2-source" not in repr(settings.source)
    assert settings.platforms == ("linux/arm64",), "PLATFORMS picks platforms of a source index"


@pytest.mark.parametrize("extra, words", [
    ({"SOURCE_USERNAME": "bot"}, ["SOURCE_USERNAME is set without SOURCE_IMAGE"]),
    ({"SOURCE_PASSWORD": "x", "SOURCE_CA_FILE": "/etc/hostname"},
     ["SOURCE_PASSWORD and SOURCE_CA_FILE are set without SOURCE_IMAGE"]),
    ({"SOURCE_IMAGE": "ghcr.io/o/a:1", "SOURCE_USERNAME": "bot"}, ["SOURCE_USERNAME is set without SOURCE_PASSWORD"]),
    ({"SOURCE_IMAGE": "ghcr.io/o/a:1", "SOURCE_PASSWORD": "x"}, ["SOURCE_PASSWORD is set without SOURCE_USERNAME"]),
    ({"SOURCE_IMAGE": "ghcr.io/o/a:1", "SOURCE_CA_FILE": "/nonexistent/ca.pem"},
     ["SOURCE_CA_FILE '/nonexistent/ca.pem' is not a file"]),
    ({"SOURCE_IMAGE": "ghcr.io/o/a:1", "IMAGE_ARCHIVE": "/nonexistent/image.tar"},
     ["SOURCE_IMAGE and IMAGE_ARCHIVE are both set"]),
    ({"SOURCE_IMAGE": "ghcr.io/o/a:1", "PUSH_ENGINE": "docker"}, ["remove PUSH_ENGINE=docker"]),
    ({"SOURCE_IMAGE": "ghcr.io/o/A:1"}, ["SOURCE_IMAGE 'ghcr.io/o/A:1'", "lowercase"]),
])
def test_each_source_problem_is_named_once(extra, words):
    problems = problems_of({**GOOD, **extra})
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], problems[0]


# -- who the pipe is at the source, and the Docker Hub hint ----------------------------------------------------

def settings_for(source: str, **extra: str):
    return parse_settings({**GOOD, "REGISTRY": DEST_REGISTRY, "SOURCE_IMAGE": source, **extra})


def test_source_login_prefers_source_credentials_then_the_pipes_own_on_the_same_registry():
    given = settings_for("ghcr.io/o/a:1", SOURCE_USERNAME="bot", SOURCE_PASSWORD="pw")
    username, password, who = source_login(given, given.source)
    assert (username, password.reveal(), who) == ("bot", "pw", "SOURCE_USERNAME=bot")
    same = settings_for("crg.apkg.io/acme/other-app:1")
    username, password, who = source_login(same, same.source)
    assert (username, password.reveal()) == ("pipelines", "s3cr3t-token") and "pipe's own" in who
    other = settings_for("ghcr.io/o/a:1")
    username, password, who = source_login(other, other.source)
    assert (username, password.reveal(), who) == ("", "", "anonymously")


@pytest.mark.parametrize("source, suffix", [
    ("my-container-app:1.0", ":1.0"),
    ("acme/my-container-app:1.0", ":1.0"),
    (f"my-container-app@{DIGEST}", f"@{DIGEST}"),
    ("my-container-app", ":latest"),
])
def test_a_hostless_name_of_the_destination_package_gets_the_full_reference(source, suffix):
    settings = settings_for(source)
    hint = docker_hub_hint(settings, settings.source)
    assert "Docker Hub" in hint and str(settings.source.reference) in hint, hint
    assert f"crg.apkg.io/acme/my-container-app{suffix}" in hint and f"{suffix} alone" in hint, hint


@pytest.mark.parametrize("source", ["nginx:1.27", "crg.apkg.io/acme/my-container-app:1.0", ":1.0",
                                    "docker.io/library/my-container-app:1"])
def test_no_hint_for_other_images_or_a_written_host(source):
    settings = settings_for(source)
    assert docker_hub_hint(settings, settings.source) == ""


# -- a layer's content against its label -----------------------------------------------------------------------

def tar_of(fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo("etc/hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    return buffer.getvalue()


TAR = tar_of()
GZIP = gzip.compress(TAR)
ZSTD = b"\x28\xb5\x2f\xfd" + bytes(60)  # the zstd frame magic, then anything
EMPTY_TAR = bytes(1024)  # an empty layer: only the two zero blocks that end an archive
FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


@pytest.mark.parametrize("media_type, head", [
    (OCI_LAYER_GZIP, GZIP), (DOCKER_LAYER_GZIP, GZIP), (FOREIGN, GZIP), (OCI_LAYER_ZSTD, ZSTD),
    (OCI_LAYER, TAR), (DOCKER_LAYER, TAR), (OCI_LAYER, tar_of(tarfile.GNU_FORMAT)),
    (OCI_LAYER, tar_of(tarfile.USTAR_FORMAT)), (OCI_LAYER, EMPTY_TAR),
    ("application/vnd.in-toto+json", b'{"_type": "https://in-toto.io/Statement/v1"}'),  # not a layer type
    ("application/vnd.oci.image.config.v1+json", b"{}"),
])
def test_content_that_matches_its_label(media_type, head):
    assert content_problem(media_type, head[:LABEL_BYTES]) is None


@pytest.mark.parametrize("media_type, head, says, found", [
    (OCI_LAYER_GZIP, TAR, "gzip", "an uncompressed tar"),
    (DOCKER_LAYER_GZIP, ZSTD, "gzip", "zstd"),
    (OCI_LAYER_ZSTD, GZIP, "zstd", "gzip"),
    (OCI_LAYER, GZIP, "tar", "gzip"),
    (DOCKER_LAYER, b"PK\x03\x04" + bytes(600), "tar", "neither gzip, zstd nor tar"),
    (OCI_LAYER_GZIP, b"", "gzip", "neither gzip, zstd nor tar"),
])
def test_content_that_contradicts_its_label_is_named(media_type, head, says, found):
    why = content_problem(media_type, head[:LABEL_BYTES])
    assert why == f"its media type {media_type} says {says}, but its content is {found}"


def test_a_copy_sends_larger_chunks_unless_told():
    # A copy's requests are its fixed cost (BENCHMARKS.md, copy); CHUNK_SIZE_MB still wins when given.
    assert parse_settings(GOOD).chunk_size == 16 * 1024**2
    assert parse_settings({**GOOD, "SOURCE_IMAGE": ":1.0"}).chunk_size == 32 * 1024**2
    assert parse_settings({**GOOD, "SOURCE_IMAGE": ":1.0", "CHUNK_SIZE_MB": "4"}).chunk_size == 4 * 1024**2
