"""A workspace's immutable tag settings, as crg.apkg.io's Container settings page has them: pure
parsing, validation and matching, shared by the config, the management API, the pages and the store.

`protect` is `none` (the default), `all`, or `some`: then 1 to 7 rules, each a name and an RE2
pattern of at most 100 characters, searched in the tag (unanchored, as RE2's PartialMatch: hence
Atlassian's examples `^prod$`, `^v\\d+\\.\\d+\\.\\d+$`). Patterns are compiled by RE2 itself, so a
pattern means what it means there: a lookahead or a backreference that Python's `re` takes is
refused, and matching stays linear in the tag's length whatever the pattern.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import re2

from .storage_errors import StorageError

PROTECT = ("none", "all", "some")
MAX_RULES = 7
MAX_PATTERN = 100
MAX_NAME = 100  # not public; a name is quoted in every refusal, so it stays a short line
RULE_KEYS = ("name", "pattern")
KEYS = ("protect", "rules")
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 logs to stderr by default; a refused pattern is the caller's answer


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str

    def matches(self, tag: str) -> bool:
        return _compiled(self.pattern).search(tag) is not None


@dataclass(frozen=True)
class Protection:
    """Why a tag is immutable: a rule, or the workspace protecting all tags (`rule` None)."""

    rule: Rule | None

    def words(self) -> str:
        if self.rule is None:
            return "the workspace protects all tags"
        return f"the workspace's rule '{self.rule.name}' ({self.rule.pattern}) protects it"

    def label(self) -> str:
        """A page's short note of it."""
        return "all tags are protected" if self.rule is None else f"rule '{self.rule.name}' ({self.rule.pattern})"


@dataclass(frozen=True)
class ImmutableTags:
    """The settings; `rules` are kept whatever `protect` says (so that switching the option back
    to `some` finds them) but only apply with `some`."""

    protect: str = "none"
    rules: tuple[Rule, ...] = ()

    def protection(self, tag: str) -> Protection | None:
        """What makes `tag` immutable (the first rule that matches, in order), None when nothing does."""
        if self.protect == "all":
            return Protection(None)
        if self.protect == "some":
            rule = first_match(self.rules, tag)
            return Protection(rule) if rule else None
        return None

    def as_dict(self) -> dict:
        return {"protect": self.protect, "rules": [{"name": r.name, "pattern": r.pattern} for r in self.rules]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


NONE = ImmutableTags()  # no tags are protected: the default


class TagImmutable(StorageError):
    """A write would move or delete an immutable tag; raised inside the transaction, so nothing changes."""

    def __init__(self, workspace: str, package: str, tag: str, held: str, protection: Protection) -> None:
        super().__init__(tag)
        self.workspace, self.package, self.tag, self.held, self.protection = workspace, package, tag, held, protection

    def overwrite_message(self) -> str:
        return (f"The tag '{self.tag}' of {self.workspace}/{self.package} is immutable: {self.protection.words()}. "
                f"It holds {self.held} and cannot be overwritten; push a new tag, or ask a workspace admin.")

    def detail(self) -> dict:
        rule = self.protection.rule
        return {"tag": self.tag, "digest": self.held, "rule": rule.name if rule else None}


    def delete_message(self) -> str:
        rule = self.protection.rule
        why = "all tags are protected" if rule is None else f"the workspace's {self.protection.label()}"
        return (f"The tag '{self.tag}' of {self.workspace}/{self.package} is immutable ({why}); "
                "only a workspace admin can delete it.")


class TagOverwriteRefused(TagImmutable):
    """A push would move an immutable tag to another digest."""


class TagDeleteRefused(TagImmutable):
    """A delete of an immutable tag by someone other than a workspace admin."""


class ImageHoldsImmutableTags(StorageError):
    """Deleting an image would delete immutable tags; raised inside the transaction, so nothing changes."""

    def __init__(self, workspace: str, package: str, tags: list[str]) -> None:
        super().__init__(package)
        self.workspace, self.package, self.tags = workspace, package, tags

    def delete_message(self) -> str:
        return (f"The image {self.workspace}/{self.package} holds immutable tags ({', '.join(self.tags)}); "
                "only a workspace admin can delete it.")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, _OPTIONS)


def pattern_problem(pattern: Any) -> str | None:
    """Why `pattern` is not a usable rule pattern, or None."""
    if not isinstance(pattern, str) or not pattern:
        return "a pattern is required (an RE2 regular expression)"
    if len(pattern) > MAX_PATTERN:
        return f"the pattern has {len(pattern)} characters; at most {MAX_PATTERN}"
    try:
        _compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"RE2 does not accept the pattern {pattern!r}: {reason}"
    return None


def first_match(rules: tuple[Rule, ...] | list[Rule], tag: str) -> Rule | None:
    """The first rule whose pattern matches `tag` (the pattern tester's answer too)."""
    return next((r for r in rules if r.matches(tag)), None)


def check_sample(protect: str, rules: list[Rule], tag: str) -> str:
    """The pattern tester's answer for a sample tag, in words, from the settings as they are being
    edited: rules whose pattern RE2 refuses are skipped (their problem is shown beside them)."""
    if protect == "all":
        return f"'{tag}' is protected: all tags are."
    usable = [r for r in rules if pattern_problem(r.pattern) is None]
    rule = first_match(usable, tag)
    if rule is None:
        return f"No rule matches '{tag}': it stays mutable."
    suffix = "" if protect == "some" else " (rules apply only when some tags are protected)"
    return f"'{tag}' matches the rule '{rule.name}' ({rule.pattern}){suffix}."


def parse_immutable_tags(raw: Any, where: str = "") -> tuple[ImmutableTags, list[str]]:
    """Settings from config or API JSON, and every problem found (each prefixed with `where`).

    The settings are only meaningful when there are no problems.
    """
    def at(key: str) -> str:
        return f"{where}.{key}" if where else key

    problems: list[str] = []
    if raw is None:
        return NONE, problems
    if not isinstance(raw, dict):
        return NONE, [f"{where or 'the settings'} must be a mapping of protect and rules, got {type(raw).__name__}"]
    unknown = sorted(map(str, set(raw) - set(KEYS)))
    if unknown:
        problems.append(f"{where or 'the settings'}: unknown keys {', '.join(unknown)}; known: {', '.join(KEYS)}")
    protect = raw.get("protect", "none")
    if protect not in PROTECT:
        problems.append(f"{at('protect')} must be one of {', '.join(PROTECT)}, got {protect!r}")
    rules: list[Rule] = []
    raw_rules = raw.get("rules")
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        problems.append(f"{at('rules')} must be a list of {{name, pattern}}")
        raw_rules = None
    elif len(raw_rules) > MAX_RULES:
        problems.append(f"{at('rules')} has {len(raw_rules)} rules; at most {MAX_RULES}")
    elif protect == "some" and not raw_rules:
        problems.append(f"{at('rules')}: protect: some needs at least one rule")
    seen: set[str] = set()
    for i, entry in enumerate(raw_rules or []):
        rule_at = f"{at('rules')}[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{rule_at} must be a mapping of name and pattern")
            continue
        extra = sorted(map(str, set(entry) - set(RULE_KEYS)))
        if extra:
            problems.append(f"{rule_at}: unknown keys {', '.join(extra)}; known: {', '.join(RULE_KEYS)}")
        name, pattern = entry.get("name"), entry.get("pattern")
        name = name.strip() if isinstance(name, str) else name
        if not isinstance(name, str) or not name:
            problems.append(f"{rule_at}.name: a rule needs a name")
        elif len(name) > MAX_NAME:
            problems.append(f"{rule_at}.name has {len(name)} characters; at most {MAX_NAME}")
        elif name in seen:
            problems.append(f"{rule_at}.name: another rule is named {name!r}; names are unique")
        else:
            seen.add(name)
        problem = pattern_problem(pattern)
        if problem:
            problems.append(f"{rule_at}.pattern: {problem}")
        if isinstance(name, str) and isinstance(pattern, str):
            rules.append(Rule(name, pattern))
    if problems:
        return NONE, problems
    return ImmutableTags(protect, tuple(rules)), problems


def from_json(text: str) -> ImmutableTags:
    """Settings the metadata stored, taken as they are: they were validated when written, and a
    protection must never vanish quietly (a pattern RE2 refused later fails the push loudly)."""
    raw = json.loads(text)
    return ImmutableTags(raw["protect"], tuple(Rule(r["name"], r["pattern"]) for r in raw["rules"]))
