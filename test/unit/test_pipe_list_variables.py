"""List variables as Pipelines passes a YAML list to a pipe: NAME_COUNT, NAME_0, NAME_1, ... (pipe/entries.py)."""
import pytest

from pipe.entries import list_keys
from pipe.variables import InvalidVariables, parse_settings

GOOD = {
    "IMAGE_NAME": "app:1.0",
    "WORKSPACE": "acme",
    "BITBUCKET_PACKAGES_USERNAME": "pipelines",
    "BITBUCKET_PACKAGES_TOKEN": "s3cr3t-token",
}


def listed(name, *items):
    """What Pipelines sets for `NAME: [items]` (as bitbucket-pipes-toolkit's ArrayVariable.decompile)."""
    return {f"{name}_COUNT": str(len(items)), **{f"{name}_{i}": item for i, item in enumerate(items)}}


def problems_of(values):
    with pytest.raises(InvalidVariables) as caught:
        parse_settings(values)
    return caught.value.problems


def test_tags_as_a_yaml_list_push_every_item():
    settings = parse_settings({**GOOD, **listed("TAGS", "1.0", "latest", "{commit:7}"),
                               "BITBUCKET_COMMIT": "0123456789abcdef"})
    assert settings.tags == ("1.0", "latest", "0123456")


def test_every_list_variable_takes_the_list_form():
    settings = parse_settings({**GOOD, **listed("PROTECT_TAGS", "[0-9]*.*.*", "v*"),
                               **listed("PLATFORMS", "linux/amd64", "Linux/ARM64"),
                               **listed("CACHE_FROM", "latest", "base:1.0")})
    assert settings.protect_tags == ("[0-9]*.*.*", "v*")
    assert settings.platforms == ("linux/amd64", "linux/arm64")
    assert settings.cache_from == (("app", "latest"), ("base", "1.0"))


def test_the_list_form_gives_what_the_text_form_gives():
    text = parse_settings({**GOOD, "TAGS": "a b", "PROTECT_TAGS": "v*", "PLATFORMS": "linux/amd64,linux/arm64",
                           "CACHE_FROM": "x"})
    as_list = parse_settings({**GOOD, **listed("TAGS", "a", "b"), **listed("PROTECT_TAGS", "v*"),
                              **listed("PLATFORMS", "linux/amd64", "linux/arm64"), **listed("CACHE_FROM", "x")})
    assert (text.tags, text.protect_tags, text.platforms, text.cache_from) == (
        as_list.tags, as_list.protect_tags, as_list.platforms, as_list.cache_from)


def test_an_empty_list_is_as_if_not_given():
    assert parse_settings({**GOOD, **listed("TAGS")}).tags == ("1.0",)
    assert parse_settings({**GOOD, **listed("PROTECT_TAGS")}).protect_tags == ()


@pytest.mark.parametrize("name", ["TAGS", "PROTECT_TAGS", "PLATFORMS", "CACHE_FROM"])
def test_both_forms_for_one_variable_is_one_problem(name):
    value = "linux/amd64" if name == "PLATFORMS" else "latest"
    problems = problems_of({**GOOD, name: value, **listed(name, value)})
    assert problems == [f"{name} is given twice, as text and as a YAML list ({name}_COUNT, {name}_0, ...): give "
                        "one of them"]


def test_an_invalid_item_is_named_by_its_index():
    problems = problems_of({**GOOD, **listed("TAGS", "1.0", "tag!", "ok"),
                            **listed("PLATFORMS", "linux/amd64", "amd64"),
                            **listed("PROTECT_TAGS", "v*", "v(1)"), **listed("CACHE_FROM", "a/b:c")})
    assert [p.split(" is not ")[0] for p in problems] == ["TAGS[1] 'tag!'", "PROTECT_TAGS[1] 'v(1)'",
                                                          "CACHE_FROM[0] 'a/b:c'", "PLATFORMS[1] 'amd64'"]
    # The text form's hint about separators does not apply to a list item.
    assert "space-separated" not in problems_of({**GOOD, **listed("TAGS", "a,b")})[0]


def test_a_list_item_holding_several_entries_is_refused_with_the_fix():
    problems = problems_of({**GOOD, **listed("TAGS", "1.0 latest")})
    assert problems == ["TAGS[0] '1.0 latest' holds several entries: a list item is one entry, e.g. "
                        "TAGS: [\"1.0\", \"latest\"]"]
    problems = problems_of({**GOOD, **listed("PLATFORMS", "linux/amd64,linux/arm64")})
    assert problems == ["PLATFORMS[0] 'linux/amd64,linux/arm64' is not os/architecture[/variant], e.g. linux/amd64 "
                        "or linux/arm64/v8; one platform per list item"]


def test_a_malformed_count_or_a_missing_or_empty_item_is_named():
    assert problems_of({**GOOD, "TAGS_COUNT": "two", "TAGS_0": "a"}) == [
        "TAGS_COUNT must be a whole number (Pipelines sets it with the items of a YAML list TAGS), got 'two'"]
    problems = problems_of({**GOOD, "TAGS_COUNT": "3", "TAGS_0": "a", "TAGS_2": " "})
    assert problems == ["TAGS[1] is missing (TAGS_COUNT is 3): give TAGS as a YAML list or as space-separated text",
                        "TAGS[2] is empty: remove the item, or give it a value"]


def test_items_beyond_the_count_are_not_read():
    assert parse_settings({**GOOD, **listed("TAGS", "a"), "TAGS_1": "stale"}).tags == ("a",)


def test_list_keys_takes_only_the_list_variables_encoding():
    env = {"TAGS_COUNT": "1", "TAGS_0": "a", "PLATFORMS_12": "x", "TAGS_X": "no", "MY_TAGS_0": "no",
           "CACHE_FROM_COUNT": "0", "BITBUCKET_COMMIT": "c"}
    assert list_keys(env) == {"TAGS_COUNT": "1", "TAGS_0": "a", "PLATFORMS_12": "x", "CACHE_FROM_COUNT": "0"}
