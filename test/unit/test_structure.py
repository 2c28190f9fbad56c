"""The layout's rules, read from the source: the seams docs/ARCHITECTURE.md states, checked.

Each rule is one a refactor could quietly break: the two parts importing each other, an import
circle, a function or the pipe's class growing back past what a reader takes in at once, the
emulator's storage answering in HTTP, manifest JSON parsed outside the OCI model, bench/ swelling.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipe", "registry")
LONGEST_FUNCTION = 60
LONGEST_PIPE_CLASS = 120
# bench/ was 4,477 lines, as large as the emulator; the second structural pass left under 3,000, every module
# behind a figure BENCHMARKS.md quotes. A ceiling, so that it does not grow back.
BENCH_LINES = 3000

# Below the handlers: they speak in the store's terms, never in HTTP's (the handlers map).
STORAGE = ("registry/store.py", "registry/uploads.py", "registry/blobfiles.py", "registry/gc.py",
           "registry/metadata")

# The modules that may call json.loads in pipe/: the OCI model, and three that read JSON that is no
# manifest or index.
JSON_READERS = {
    "pipe/oci/manifest.py": "manifests, indexes and image configs",
    "pipe/sources/archive_images.py": "docker save's manifest.json, a list of Config/RepoTags/Layers",
    "pipe/sources/daemon_export.py": "a classic export's per-layer v1 `json`",
    "pipe/client/auth.py": "the bearer token's claims, for its expiry",
}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _modules(package: str) -> list[Module]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append(Module(name, path, ast.parse(path.read_text(), str(path))))
    return found


def _imported(module: Module) -> set[str]:
    """Every module named by an import anywhere in the file, TYPE_CHECKING blocks included:
    a circle through a type annotation is still a circle for a reader."""
    names = set()
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _graph(package: str) -> dict[str, set[str]]:
    modules = {m.name: m for m in _modules(package)}
    return {name: {n for n in _imported(m) if n in modules and n != name}
            for name, m in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in the graph, as the path around it, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodules is not a circle with them.
            if node.startswith(nxt + ".") and state.get(nxt) == 1:
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.mark.parametrize("package,other", [("pipe", "registry"), ("registry", "pipe"),
                                           ("pipe", "harness"), ("registry", "harness")])
def test_the_parts_meet_only_over_http(package, other):
    crossing = [f"{m.rel} imports {n}" for m in _modules(package) for n in sorted(_imported(m))
                if n == other or n.startswith(other + ".")]
    assert crossing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package):
    assert _cycle(_graph(package)) is None


def test_the_circle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_is_longer_than_a_screen(package):
    long = [f"{m.rel}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for m in _modules(package) for node in ast.walk(m.tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION]
    assert long == []


def test_the_pipe_class_is_glue():
    (module,) = [m for m in _modules("pipe") if m.rel == "pipe/pipe.py"]
    (cls,) = [n for n in module.tree.body
              if isinstance(n, ast.ClassDef) and n.name == "PushContainerImagePipe"]
    assert cls.end_lineno - cls.lineno + 1 <= LONGEST_PIPE_CLASS


def _is_storage(module: Module) -> bool:
    return any(module.rel == s or module.rel.startswith(s + "/") for s in STORAGE)


def test_storage_speaks_in_its_own_terms():
    """No aiohttp, no status or headers: a storage module raises its own errors."""
    found = []
    for m in filter(_is_storage, _modules("registry")):
        found += [f"{m.rel} imports {n}" for n in _imported(m) if n.split(".")[0] == "aiohttp"]
        found += [f"{m.rel}:{node.lineno} {node.arg}=" for node in ast.walk(m.tree)
                  if isinstance(node, ast.keyword) and node.arg in ("status", "headers")]
    assert found == []


def test_manifest_json_is_parsed_by_the_oci_model_only():
    readers = {m.rel for m in _modules("pipe") for node in ast.walk(m.tree)
               if isinstance(node, ast.Attribute) and node.attr in ("loads", "load")
               and isinstance(node.value, ast.Name) and node.value.id == "json"}
    assert readers - set(JSON_READERS) == set()


def test_bench_does_not_grow_back():
    lines = sum(len(p.read_text().splitlines()) for p in (ROOT / "bench").rglob("*.py"))
    assert lines < BENCH_LINES
