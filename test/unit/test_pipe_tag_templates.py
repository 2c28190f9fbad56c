"""TAGS placeholders (pipe/tag_templates.py) against real-looking Pipelines values, and through
parse_settings: the tags, the entries left out with their info lines, and the refusals."""
from __future__ import annotations

import pytest

from pipe.entries import split_entries
from pipe.references import tag_problem
from pipe.tag_templates import BuildValues, as_tag, expand_tags
from pipe.variables import InvalidVariables, parse_settings

COMMIT = "3f9c2d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
LONG_BRANCH = "feature/" + "x" * 192  # 200 characters


def branch(name: str, **more: str) -> BuildValues:
    return BuildValues(branch=name, commit=COMMIT, build="123", **more)


def git_tag(name: str) -> BuildValues:
    return BuildValues(tag=name, commit=COMMIT, build="77")


@pytest.mark.parametrize(("raw", "expected"), [
    ("feature/Login-Page", "feature-login-page"),
    ("main", "main"),
    ("bugfix/#123-crash", "bugfix-123-crash"),
    ("release/2024.06", "release-2024.06"),
    ("Über/Straße", "ber-stra-e"),
    ("--.hidden", "hidden"),
    ("a//b___c..d", "a-b___c..d"),
    ("日本語", ""),
    (LONG_BRANCH, ("feature-" + "x" * 192)[:128]),
])
def test_as_tag_follows_the_rule(raw, expected):
    made = as_tag(raw)
    assert made == expected
    assert made == "" or tag_problem(made) is None


@pytest.mark.parametrize(("tags", "build", "expected"), [
    ("{branch}", branch("feature/Login-Page"), ["feature-login-page"]),
    ("{branch}-{build}", branch("main"), ["main-123"]),
    ("{branch} {commit:7}", branch("bugfix/#123-crash"), ["bugfix-123-crash", COMMIT[:7]]),
    ("{commit}", branch("main"), [COMMIT]),
    ("{commit:4} {commit:40}", branch("main"), [COMMIT[:4], COMMIT]),
    ("{branch}", branch(LONG_BRANCH), [("feature-" + "x" * 192)[:128]]),
    ("{branch}-{commit:7}", branch(LONG_BRANCH), [("feature-" + "x" * 192)[:120] + "-" + COMMIT[:7]]),
    ("build-{build}", branch("main"), ["build-123"]),
    ("{tag}", git_tag("v1.2.3"), ["v1.2.3"]),
    ("{version}", git_tag("v1.2.3"), ["1.2.3"]),
    ("{version}", git_tag("1.2.3"), ["1.2.3"]),
    ("{semver}", git_tag("v1.2.3"), ["1.2.3", "1.2", "1"]),
    ("{semver} latest", git_tag("v1.4.2"), ["1.4.2", "1.4", "1", "latest"]),
    ("{semver}", git_tag("1.5.0-rc.1"), ["1.5.0-rc.1"]),
    ("{version}", git_tag("1.5.0-rc.1"), ["1.5.0-rc.1"]),
    ("{version}", git_tag("2.0.0+build.7"), ["2.0.0_build.7"]),
    ("{semver}", git_tag("2.0.0+build.7"), ["2.0.0_build.7", "2.0", "2"]),
    ("{semver}", git_tag("0.4.2"), ["0.4.2", "0.4"]),
    ("{semver}-alpine", git_tag("v3.1.0"), ["3.1.0-alpine", "3.1-alpine", "3-alpine"]),
    ("{tag}", git_tag("release-2024"), ["release-2024"]),
    ("{tag}", git_tag("Release/2024"), ["release-2024"]),
    ("{version} {semver} {version}", git_tag("v1.2.3"), ["1.2.3", "1.2", "1"]),  # repeats pushed once
    ("{branch} main", branch("main"), ["main"]),
    ("", branch("main"), ["dev"]),  # an empty TAGS is the source image's tag
])
def test_placeholders_expand(tags, build, expected):
    result = expand_tags(split_entries("TAGS", tags), "dev", build)
    assert result.problems == []
    assert result.tags == expected
    assert all(tag_problem(t) is None for t in result.tags)


@pytest.mark.parametrize(("tags", "build", "kept", "note"), [
    ("{semver} {branch}", branch("main"), ["main"],
     "TAGS entry '{semver}' left out: {semver}: BITBUCKET_TAG is not set (only a build of a git tag has one)"),
    ("{version} {tag}", git_tag("v1.2"), ["v1.2"],
     "TAGS entry '{version}' left out: {version}: BITBUCKET_TAG 'v1.2' is not a semantic version"),
    ("{semver} {tag}", git_tag("release-2024"), ["release-2024"],
     "TAGS entry '{semver}' left out: {semver}: BITBUCKET_TAG 'release-2024' is not a semantic version"),
    ("{branch} {version}", git_tag("v1.2.3"), ["1.2.3"],
     "TAGS entry '{branch}' left out: {branch}: BITBUCKET_BRANCH is not set"),
    ("{branch} {commit:7}", branch("日本語"), [COMMIT[:7]],
     "TAGS entry '{branch}' left out: {branch}: BITBUCKET_BRANCH '日本語' has no character usable in a tag"),
    ("{build} x", BuildValues(), ["x"], "TAGS entry '{build}' left out: {build}: BITBUCKET_BUILD_NUMBER is not set"),
])
def test_an_entry_without_a_value_is_left_out_with_a_note(tags, build, kept, note):
    result = expand_tags(split_entries("TAGS", tags), "dev", build)
    assert result.problems == []
    assert result.tags == kept
    assert len(result.notes) == 1 and result.notes[0].startswith(note), result.notes


def test_nothing_left_fails_naming_each_entry_and_why():
    result = expand_tags(split_entries("TAGS", "{semver} {version}-{build}"), "dev", branch("main"))
    assert result.tags == []
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.startswith("TAGS gives no tag in this build")
    assert "'{semver}' ({semver}: BITBUCKET_TAG is not set" in problem
    assert "'{version}-{build}' ({version}: BITBUCKET_TAG is not set" in problem


@pytest.mark.parametrize(("tags", "words"), [
    ("{commit:2}", ["'{commit:2}'", "{commit:2} takes 4 to 40 characters", "{branch} {tag} {version} {semver}"]),
    ("{commit:41}", ["{commit:41} takes 4 to 40 characters"]),
    ("{Branch}", ["{Branch} is not a placeholder", "the placeholders are {branch}"]),
    ("v{sha}", ["{sha} is not a placeholder", "{commit:N} (N from 4 to 40) {build}"]),
    ("{branch}}", ["a brace is not closed"]),
    ("{}", ["{} is not a placeholder"]),
    ("{branch", ["is not a valid tag", "a placeholder is written in braces"]),
])
def test_unknown_or_malformed_placeholders_are_refused(tags, words):
    result = expand_tags(split_entries("TAGS", tags), "dev", branch("main"))
    assert result.tags == [] and len(result.problems) == 1
    for word in words:
        assert word in result.problems[0], result.problems[0]


@pytest.mark.parametrize(("tags", "build", "words"), [
    ("feature/Login-Page", branch("feature/Login-Page"),
     ["TAGS entry 'feature/Login-Page' is not a valid tag", "use {branch}: feature-login-page"]),
    ("Release/2024", git_tag("Release/2024"), ["use {tag}: release-2024"]),
    ("my/tag", branch("main"), ["as a valid tag it would be my-tag"]),
    ("a,b", branch("main"), ["(TAGS is space-separated)"]),
    ("-{build}", branch("main"), ["TAGS entry '-{build}' expands to '-123', which is not a valid tag"]),
])
def test_an_invalid_literal_names_the_tag_it_would_become(tags, build, words):
    result = expand_tags(split_entries("TAGS", tags), "dev", build)
    assert result.tags == [] and len(result.problems) == 1
    for word in words:
        assert word in result.problems[0], result.problems[0]


GOOD = {"IMAGE_NAME": "app:1.0", "WORKSPACE": "acme", "BITBUCKET_PACKAGES_USERNAME": "u",
        "BITBUCKET_PACKAGES_TOKEN": "t"}


def test_parse_settings_reads_the_step_variables_and_keeps_the_notes():
    settings = parse_settings({**GOOD, "TAGS": "{semver} {branch} {commit:7}", "BITBUCKET_BRANCH": "feature/x",
                               "BITBUCKET_COMMIT": COMMIT, "PROTECT_TAGS": "[0-9]*.*.* v*", "DRY_RUN": "true"})
    assert settings.tags == ("feature-x", COMMIT[:7])
    assert settings.tag_notes == ("TAGS entry '{semver}' left out: {semver}: BITBUCKET_TAG is not set (only a "
                                  "build of a git tag has one)",)
    assert settings.protect_tags == ("[0-9]*.*.*", "v*")
    assert settings.dry_run is True
    assert parse_settings(GOOD).dry_run is False and parse_settings(GOOD).protect_tags == ()


def test_parse_settings_lists_tag_protection_and_dry_run_problems_together():
    with pytest.raises(InvalidVariables) as caught:
        parse_settings({**GOOD, "TAGS": "{commit:2}", "PROTECT_TAGS": "1.*,2.*", "DRY_RUN": "maybe"})
    text = "\n".join(caught.value.problems)
    assert "{commit:2} takes 4 to 40 characters" in text
    assert "PROTECT_TAGS entry '1.*,2.*' is not a tag pattern" in text and "space-separated" in text
    assert "DRY_RUN must be true or false, got 'maybe'" in text
