"""Placeholders in TAGS: `{branch}`, `{tag}`, `{version}`, `{semver}`, `{commit}`, `{commit:N}`, `{build}`,
expanded from the Pipelines variables of the step (BITBUCKET_BRANCH, BITBUCKET_TAG, BITBUCKET_COMMIT,
BITBUCKET_BUILD_NUMBER).

Pure functions only. `expand_tags` returns the tags in order without repeats, the info lines for the
entries left out (a placeholder with no value in this build), and the problems (an unknown or malformed
placeholder, an entry that does not expand to a valid tag, nothing left at all).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .entries import Entry, split_entries
from .references import tag_problem

TAG_MAX = 128
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
COMMIT = re.compile(r"commit(?::(\d+))?\Z")
COMMIT_MIN, COMMIT_MAX = 4, 40
# semver.org's grammar, with an optional leading `v` (git tags are often `v1.4.2`).
SEMVER = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z")
KNOWN = "{branch} {tag} {version} {semver} {commit} {commit:N} (N from 4 to 40) {build}"
NAMES = ("branch", "tag", "version", "semver", "build")  # and commit, commit:N


@dataclass(frozen=True)
class BuildValues:
    """The Pipelines variables of the step ("" when unset: a branch build has no tag, a tag build no branch)."""

    branch: str = ""
    tag: str = ""
    commit: str = ""
    build: str = ""

    @classmethod
    def of(cls, values: Mapping[str, object]) -> BuildValues:
        def text(name: str) -> str:
            value = values.get(name)
            return "" if value is None else str(value).strip()
        return cls(text("BITBUCKET_BRANCH"), text("BITBUCKET_TAG"), text("BITBUCKET_COMMIT"),
                   text("BITBUCKET_BUILD_NUMBER"))


@dataclass
class Expanded:
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # info lines: entries left out, and why
    problems: list[str] = field(default_factory=list)


def as_tag(value: str) -> str:
    """Any text as a valid tag: lowercased, every character outside [a-z0-9_.-] replaced by `-`, runs of
    `-` collapsed, no leading `.` or `-`, at most 128 characters ("" when nothing usable is left)."""
    text = re.sub(r"[^a-z0-9_.-]", "-", value.lower())
    text = re.sub(r"-{2,}", "-", text)
    return text.lstrip(".-")[:TAG_MAX]


def version_of(tag: str) -> re.Match[str] | None:
    return SEMVER.fullmatch(tag)


def version_text(match: re.Match[str]) -> str:
    """`v1.4.2` -> `1.4.2`; build metadata `+x` becomes `_x` (`+` is not allowed in a tag)."""
    text = f"{match['major']}.{match['minor']}.{match['patch']}"
    if match["pre"]:
        text += f"-{match['pre']}"
    if match["build"]:
        text += f"_{match['build']}"
    return text


def semver_tags(match: re.Match[str]) -> list[str]:
    """A release moves `1.4.2 1.4 1` (`0.y.z 0.y`: no bare `0`); a prerelease gives only itself."""
    full = version_text(match)
    if match["pre"]:
        return [full]
    tags = [full, f"{match['major']}.{match['minor']}"]
    if match["major"] != "0":
        tags.append(match["major"])
    return tags


def _values(name: str, build: BuildValues) -> tuple[list[str], str | None]:
    """The value(s) of a known placeholder in this build, or ([], why it has none)."""
    if name == "branch":
        if not build.branch:
            return [], "BITBUCKET_BRANCH is not set (a tag or custom build without a branch)"
        value = as_tag(build.branch)
        return ([value], None) if value else ([], f"BITBUCKET_BRANCH '{build.branch}' has no character usable in a tag")
    if name in ("tag", "version", "semver"):
        if not build.tag:
            return [], "BITBUCKET_TAG is not set (only a build of a git tag has one)"
        if name == "tag":
            value = as_tag(build.tag)
            return ([value], None) if value else ([], f"BITBUCKET_TAG '{build.tag}' has no character usable in a tag")
        match = version_of(build.tag)
        if match is None:
            return [], (f"BITBUCKET_TAG '{build.tag}' is not a semantic version (MAJOR.MINOR.PATCH, optionally "
                        "with a leading v, e.g. v1.4.2)")
        return ([version_text(match)] if name == "version" else semver_tags(match)), None
    if name == "build":
        return ([build.build], None) if build.build else ([], "BITBUCKET_BUILD_NUMBER is not set")
    match = COMMIT.match(name)
    assert match is not None
    if not build.commit:
        return [], "BITBUCKET_COMMIT is not set"
    return [build.commit[:int(match[1])] if match[1] else build.commit], None


def placeholder_problem(name: str) -> str | None:
    """Why `{name}` is not a placeholder, or None when it is one."""
    if name in NAMES:
        return None
    match = COMMIT.match(name)
    if match:
        if match[1] is None or COMMIT_MIN <= int(match[1]) <= COMMIT_MAX:
            return None
        return f"{{{name}}} takes {COMMIT_MIN} to {COMMIT_MAX} characters of the commit"
    return f"{{{name}}} is not a placeholder"


def _fit(entry: str, values: dict[str, str]) -> str:
    """The entry with its placeholders replaced; the `{branch}` and `{tag}` values are shortened from
    their end when the whole would be longer than a tag may be."""
    expanded = PLACEHOLDER.sub(lambda m: values[m[1]], entry)
    over = len(expanded) - TAG_MAX
    shrinkable = [name for name in ("branch", "tag") if name in values and f"{{{name}}}" in entry]
    if over <= 0 or not shrinkable:
        return expanded
    values = dict(values)
    for name in shrinkable:
        uses = entry.count(f"{{{name}}}")
        cut = min(len(values[name]) - 1, -(-over // uses))
        values[name] = values[name][:len(values[name]) - cut]
        over -= cut * uses
        if over <= 0:
            break
    return PLACEHOLDER.sub(lambda m: values[m[1]], entry)


def _literal_hint(entry: str, build: BuildValues) -> str:
    """For an invalid literal entry: the placeholder that gives it as a valid tag (`$BITBUCKET_BRANCH`
    written in TAGS expands to the raw branch name)."""
    for name, raw in (("branch", build.branch), ("tag", build.tag)):
        if raw and entry == raw and as_tag(raw):
            return f"; use {{{name}}}: {as_tag(raw)}"
    made = as_tag(entry)
    return f"; as a valid tag it would be {made}" if made and made != entry else ""


def expand_entry(item: Entry, build: BuildValues) -> tuple[list[str], str | None, list[str]]:
    """One TAGS entry: (tags, why it was left out, problems)."""
    entry = item.text
    names = PLACEHOLDER.findall(entry)
    if not names:
        why = tag_problem(entry)
        if why is None:
            return [entry], None, []
        hint = " (TAGS is space-separated)" if "," in entry and not item.listed else ""
        hint += ("; a placeholder is written in braces, e.g. {branch}" if "{" in entry or "}" in entry
                 else _literal_hint(entry, build))
        return [], None, [f"{item.label} is not a valid tag: {why}{hint}"]
    wrong = [why for why in map(placeholder_problem, dict.fromkeys(names)) if why]
    rest = PLACEHOLDER.sub("", entry)
    if "{" in rest or "}" in rest:
        wrong.append("a brace is not closed")
    if wrong:
        return [], None, [f"{item.label}: {'; '.join(wrong)}; the placeholders are {KNOWN}"]
    values: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        found, why = _values(name, build)
        if why is not None:
            return [], f"{{{name}}}: {why}", []
        values[name] = found
    # Only {semver} has several values: the entry is expanded once per value.
    many = values.get("semver", [""])
    tags, problems = [], []
    for index in range(len(many)):
        tag = _fit(entry, {name: found[index] if name == "semver" else found[0] for name, found in values.items()})
        why = tag_problem(tag)
        if why is not None:
            problems.append(f"{item.label} expands to '{tag}', which is not a valid tag: {why}")
        else:
            tags.append(tag)
    return tags, None, problems


def expand_tags(entries: Sequence[Entry], default: str, build: BuildValues) -> Expanded:
    """Every TAGS entry expanded (no entry is `default`), repeats pushed once, in order."""
    result = Expanded()
    dropped: list[str] = []
    for entry in entries or split_entries("TAGS", default):
        tags, why, problems = expand_entry(entry, build)
        result.problems += problems
        if why is not None:
            dropped.append(f"'{entry.text}' ({why})")
            result.notes.append(f"{entry.label} left out: {why}")
        for tag in tags:
            if tag not in result.tags:
                result.tags.append(tag)
    if not result.tags and not result.problems:
        result.problems.append("TAGS gives no tag in this build: every entry was left out: " + "; ".join(dropped) +
                               ". Add a literal tag or a placeholder this build has a value for, e.g. {commit:7}")
    return result

