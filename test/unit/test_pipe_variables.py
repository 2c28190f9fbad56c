"""Parsing and validating the pipe's variables (pipe/variables.py)."""


import pytest

from pipe.entries import split_entries
from pipe.references import ImageName
from pipe.tag_templates import BuildValues, expand_tags
from pipe.variables import InvalidVariables, parse_settings

GOOD = {
    "IMAGE_NAME": "my-container-app:1.0",
    "WORKSPACE": "acme",
    "BITBUCKET_PACKAGES_USERNAME": "pipelines",
    "BITBUCKET_PACKAGES_TOKEN": "s3cr3t-token",
}


def problems_of(values):
    with pytest.raises(InvalidVariables) as caught:
        parse_settings(values)
    return caught.value.problems


def test_defaults():
    s = parse_settings(GOOD)
    assert s.image == ImageName("my-container-app", "1.0")
    assert s.tags == ("1.0",)  # TAGS defaults to the source tag
    assert s.registry == "crg.apkg.io"
    assert s.workspace == "acme"
    assert s.debug is False
    assert s.shared_storage_dir is None
    assert s.destination.reference("1.0") == "crg.apkg.io/acme/my-container-app:1.0"


def test_source_tag_defaults_to_latest():
    assert parse_settings({**GOOD, "IMAGE_NAME": "app"}).tags == ("latest",)


def test_tags_split_on_whitespace_and_deduplicated():
    s = parse_settings({**GOOD, "TAGS": " latest  abc123\n1.0 latest "})
    assert s.tags == ("latest", "abc123", "1.0")


def test_workspace_falls_back_to_bitbucket_workspace():
    values = {**GOOD, "BITBUCKET_WORKSPACE": "team-ws"}
    del values["WORKSPACE"]
    assert parse_settings(values).workspace == "team-ws"
    assert parse_settings({**values, "WORKSPACE": "other"}).workspace == "other"


def test_registry_and_shared_dir_and_debug():
    s = parse_settings({**GOOD, "REGISTRY": "127.0.0.1:5077", "BITBUCKET_PIPE_SHARED_STORAGE_DIR": "/tmp/x",
                        "DEBUG": True})
    assert (s.registry, s.shared_storage_dir, s.debug) == ("127.0.0.1:5077", "/tmp/x", True)


def test_token_is_not_in_repr():
    s = parse_settings(GOOD)
    assert "s3cr3t-token" not in repr(s)
    assert "s3cr3t-token" not in str(s.token)
    assert s.token.reveal() == "s3cr3t-token"


def test_every_problem_is_reported_at_once():
    problems = problems_of({"IMAGE_NAME": "Bad:.x", "TAGS": "ok a,b -x ok", "REGISTRY": "https://crg.apkg.io"})
    text = "\n".join(problems)
    assert "IMAGE_NAME 'Bad:.x' is not a valid image name: 'Bad' must be lowercase" in text
    assert "IMAGE_NAME 'Bad:.x' has an invalid tag '.x'" in text
    assert "TAGS entry 'a,b' is not a valid tag" in text and "(TAGS is space-separated)" in text
    assert "TAGS entry '-x' is not a valid tag" in text
    assert "WORKSPACE is missing: set WORKSPACE to your workspace slug or run inside Bitbucket Pipelines" in text
    assert "BITBUCKET_PACKAGES_USERNAME is missing" in text
    assert "BITBUCKET_PACKAGES_TOKEN is missing" in text
    assert "REGISTRY 'https://crg.apkg.io' is not valid" in text
    assert len(problems) == 8


def test_missing_image_name():
    values = dict(GOOD)
    del values["IMAGE_NAME"]
    assert problems_of(values) == [
        "IMAGE_NAME is required: the local image to push, e.g. my-container-app or my-container-app:1.0"]


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_blank_values_count_as_missing(blank):
    problems = problems_of({**GOOD, "BITBUCKET_PACKAGES_TOKEN": blank})
    assert problems[0].startswith("BITBUCKET_PACKAGES_TOKEN is missing")


def test_invalid_workspace_names_its_source():
    values = {**GOOD, "BITBUCKET_WORKSPACE": "Acme"}
    del values["WORKSPACE"]
    assert problems_of(values) == ["BITBUCKET_WORKSPACE 'Acme' is not a valid workspace slug: 'Acme' must be lowercase"]
    assert "without '/'" in problems_of({**GOOD, "WORKSPACE": "a/b"})[0]


def test_too_long_pushed_name():
    problems = problems_of({**GOOD, "IMAGE_NAME": "a" * 250, "WORKSPACE": "workspace"})
    assert "longer than 255 characters" in problems[0]


def test_empty_tags_expand_to_the_default():
    expanded = expand_tags(split_entries("TAGS", ""), "dev", BuildValues())
    assert (expanded.tags, expanded.notes, expanded.problems) == (["dev"], [], [])


def test_debug_must_be_true_or_false_and_is_named_first():
    assert problems_of({**GOOD, "DEBUG": "maybe"}) == ["DEBUG must be true or false, got 'maybe'"]
    assert problems_of({**GOOD, "DEBUG": "maybe", "DRY_RUN": "often"}) == [
        "DEBUG must be true or false, got 'maybe'", "DRY_RUN must be true or false, got 'often'"]
    assert parse_settings({**GOOD, "DEBUG": "On"}).debug is True
