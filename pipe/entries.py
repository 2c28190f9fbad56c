"""Variables that hold several entries: space-separated text, or a YAML list as Pipelines passes it.

Pipelines gives a pipe `TAGS: ["1.0", "latest"]` as TAGS_COUNT=2, TAGS_0=1.0, TAGS_1=latest (Atlassian's
convention for pipes, read by bitbucket-pipes-toolkit's ArrayVariable); the variable itself is not set.
Both forms become the same `Entry` values, each knowing how a message names it, so that a wrong list
item is named by its index. Pure functions only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

# The variables that take several entries (keep in step with pipe.yml and the README).
LIST_VARIABLES = ("TAGS", "PROTECT_TAGS", "PLATFORMS", "CACHE_FROM")


@dataclass(frozen=True)
class Entry:
    text: str
    label: str  # how a message names it: "TAGS entry 'x'" or "TAGS[1] 'x'"
    listed: bool = False  # from a YAML list (then separator hints do not apply)


def split_entries(name: str, raw: str, separators: str = "") -> list[Entry]:
    """The text form: entries separated by spaces (and by `separators`)."""
    for separator in separators:
        raw = raw.replace(separator, " ")
    return [Entry(text, f"{name} entry '{text}'") for text in raw.split()]


def list_keys(environ: Mapping[str, Any]) -> dict[str, Any]:
    """The NAME_COUNT and NAME_<i> variables of the list variables, as found in the environment."""
    pattern = re.compile(rf"(?:{'|'.join(LIST_VARIABLES)})_(?:COUNT|\d+)\Z")
    return {key: value for key, value in environ.items() if pattern.match(key)}


def listed_entries(values: Mapping[str, Any], name: str) -> tuple[list[Entry] | None, list[str]]:
    """The YAML-list form of `name`: None when NAME_COUNT is not set, else its items and the problems."""
    count_key = f"{name}_COUNT"
    if count_key not in values:
        return None, []
    raw_count = str(values[count_key]).strip()
    if not raw_count.isdigit():
        return [], [f"{count_key} must be a whole number (Pipelines sets it with the items of a YAML list "
                    f"{name}), got '{raw_count}'"]
    problems = []
    text = values.get(name)
    if text is not None and str(text).strip():
        problems.append(f"{name} is given twice, as text and as a YAML list ({count_key}, {name}_0, ...): give "
                        "one of them")
    found: list[Entry] = []
    for index in range(int(raw_count)):
        item = values.get(f"{name}_{index}")
        label = f"{name}[{index}]"
        if item is None:
            problems.append(f"{label} is missing ({count_key} is {raw_count}): give {name} as a YAML list or as "
                            "space-separated text")
        elif not str(item).strip():
            problems.append(f"{label} is empty: remove the item, or give it a value")
        elif len(str(item).split()) > 1:
            problems.append(f"{label} '{str(item).strip()}' holds several entries: a list item is one entry, "
                            f"e.g. {name}: [\"{str(item).split()[0]}\", \"{str(item).split()[1]}\"]")
        else:
            found.append(Entry(str(item).strip(), f"{label} '{str(item).strip()}'", listed=True))
    return found, problems


def entries(values: Mapping[str, Any], name: str, separators: str = "") -> tuple[list[Entry], list[str]]:
    """The entries of `name` in either form, and the problems of the list form."""
    listed, problems = listed_entries(values, name)
    if listed is not None:
        return listed, problems
    return split_entries(name, str(values.get(name) or ""), separators), []
