"""The documents' promises that code can check: the map names only files that exist, the front door stays short."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_path_the_architecture_names_exists():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    paths = set(re.findall(r"`((?:pipe|registry|harness|bench|test|docs|demo)/[A-Za-z0-9_./]+)`", text))
    assert len(paths) > 20, "the map names the files it points at"
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


def test_the_readme_is_a_front_door_of_at_most_300_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
