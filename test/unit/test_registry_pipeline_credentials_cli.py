"""`python -m registry pipeline-credentials`: what it prints, what it stores, what it refuses."""
from __future__ import annotations

import json

import pytest
import yaml

from harness.accounts import default_config
from registry.__main__ import main
from registry.auth import PIPELINE, identify
from registry.config import parse_config


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["pipeline-credentials", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_two_variables_one_a_line_and_stores_only_a_hash(tmp_path, capsys):
    code, out, err = run(capsys, "--root", str(tmp_path), "--workspace", "acme", "--repository", "web-app",
                         "--ttl", "3600")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["BITBUCKET_PACKAGES_USERNAME", "BITBUCKET_PACKAGES_TOKEN"]
    user, token = (line.split("=", 1)[1] for line in lines)
    stored = list((tmp_path / "pipeline-credentials").glob("*.json"))
    assert [p.name for p in stored] == [f"{user}.json"] and stored[0].stat().st_mode & 0o077 == 0
    record = json.loads(stored[0].read_text())
    assert token not in stored[0].read_text() and record["repository"] == "web-app"
    [principal] = identify(parse_config(default_config()), tmp_path, user, token)
    assert principal.kind == PIPELINE and principal.repository == "web-app"


@pytest.mark.parametrize("args, words", [
    (["--workspace", "Acme!", "--repository", "web-app", "--ttl", "60"], "--workspace 'Acme!' is not a workspace slug"),
    (["--workspace", "acme", "--repository", "../x", "--ttl", "60"], "--repository '../x' is not a repository slug"),
    (["--workspace", "acme", "--repository", "web-app", "--ttl", "0"], "--ttl must be at least 1 second"),
    (["--workspace", "nope", "--repository", "web-app", "--ttl", "60", "--config", "{config}"], "workspace 'nope' is "
                                                                                                "not in"),
    (["--workspace", "acme", "--repository", "nope", "--ttl", "60", "--config", "{config}"],
     "repository 'nope' is not in workspace 'acme'"),
])
def test_bad_arguments_are_refused_and_nothing_is_stored(tmp_path, capsys, args, words):
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(default_config()))
    code, out, err = run(capsys, "--root", str(tmp_path / "root"), *[a.format(config=config) for a in args])
    assert code == 2 and out == "" and words in err
    assert not (tmp_path / "root").exists()
