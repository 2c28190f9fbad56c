"""The reference grammar and the pushed references (pipe/references.py)."""


import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipe.references import (
    Destination,
    ImageName,
    parse_image_name,
    registry_problem,
    repository_name_problem,
    split_name_and_tag,
    tag_problem,
)


@pytest.mark.parametrize("value, expected", [
    ("app", ("app", None)),
    ("app:1.0", ("app", "1.0")),
    ("team/app:v2", ("team/app", "v2")),
    ("localhost:5000/app", ("localhost:5000/app", None)),
    ("localhost:5000/app:x", ("localhost:5000/app", "x")),
])
def test_split_name_and_tag(value, expected):
    assert split_name_and_tag(value) == expected


@pytest.mark.parametrize("name", ["app", "my-container-app", "a.b", "a_b", "a__b", "a---b", "team/app", "a1/b2/c3"])
def test_valid_names(name):
    assert repository_name_problem(name) is None


@pytest.mark.parametrize("name, reason", [
    ("", "empty"),
    ("My-App", "must be lowercase"),
    ("-app", "is not valid"),
    ("app-", "is not valid"),
    ("a...b", "is not valid"),
    ("a___b", "is not valid"),
    ("team//app", "is not valid"),
    ("app name", "is not valid"),
    ("a" * 256, "limit is 255"),
])
def test_invalid_names(name, reason):
    assert reason in repository_name_problem(name)


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "1", "_x", "A-b_c.d", "a" * 128])
def test_valid_tags(tag):
    assert tag_problem(tag) is None


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a/b", "a,b", "a b", "é", "a" * 129])
def test_invalid_tags(tag):
    assert tag_problem(tag) is not None


@pytest.mark.parametrize("registry", ["crg.apkg.io", "127.0.0.1:5000", "localhost", "localhost:5077", "[::1]:5000",
                                      "Reg.Example.COM"])
def test_valid_registries(registry):
    assert registry_problem(registry) is None


@pytest.mark.parametrize("registry, reason", [
    ("https://crg.apkg.io", "without a scheme"),
    ("crg.apkg.io/acme", "without a scheme or a path"),
    ("crg.apkg.io:", "not a valid host"),
    ("crg.apkg.io:99999", "out of range"),
    ("-bad.io", "not a valid host"),
    ("has space", "not a valid host"),
])
def test_invalid_registries(registry, reason):
    assert reason in registry_problem(registry)


def test_parse_image_name_defaults_tag_to_latest():
    assert parse_image_name("my-container-app") == (ImageName("my-container-app", "latest"), [])
    assert parse_image_name("my-container-app:1.0") == (ImageName("my-container-app", "1.0"), [])


def test_parse_image_name_reports_name_and_tag_problems_together():
    image, problems = parse_image_name("My-App:.bad")
    assert image is None
    assert len(problems) == 2
    assert "must be lowercase" in problems[0]
    assert "invalid tag '.bad'" in problems[1]


def test_parse_image_name_rejects_digest_and_host_without_workspace():
    assert "digest" in parse_image_name("app@sha256:" + "a" * 64)[1][0]
    problems = parse_image_name("crg.apkg.io/app:1")[1]
    assert "names a registry host but no workspace" in problems[0]
    assert "crg.apkg.io/my-workspace/app:1" in problems[0]


def test_parse_image_name_accepts_a_full_reference():
    image, problems = parse_image_name("crg.apkg.io/acme/app:1")
    assert problems == []
    assert image == ImageName("app", "1", "crg.apkg.io", "acme")
    assert str(image) == "crg.apkg.io/acme/app:1"
    assert parse_image_name("127.0.0.1:5000/acme/app")[0] == ImageName("app", "latest", "127.0.0.1:5000", "acme")
    assert "invalid workspace 'Acme'" in parse_image_name("crg.apkg.io/Acme/app:1")[1][0]


def test_destination_references():
    d = Destination("crg.apkg.io", "acme", "app")
    assert d.repository == "crg.apkg.io/acme/app"
    assert d.reference("v1") == "crg.apkg.io/acme/app:v1"
    assert d.reference_by_digest("sha256:ab") == "crg.apkg.io/acme/app@sha256:ab"


@given(st.from_regex(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*", fullmatch=True).filter(lambda s: len(s) <= 255),
       st.from_regex(r"[\w][\w.-]{0,127}", fullmatch=True).filter(str.isascii))
def test_any_grammatical_name_and_tag_round_trip(name, tag):
    image, problems = parse_image_name(f"{name}:{tag}")
    assert problems == []
    assert image == ImageName(name, tag)
