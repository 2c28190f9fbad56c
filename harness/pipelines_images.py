"""Stand-ins for the images bitbucket-pipeline-runner pulls, built offline (no Docker Hub here) and cached.

The runner (pipeline_runner 0.6.3) pulls these names and, when a pull fails, runs the local image of that
name (`container.pull_image`); where it calls `containers.run` directly, the image must already be local:

- `k8s-docker.packages.atlassian.com/pause:3.8`, the step's network namespace (runner.py): busybox, `sleep`;
- `alpine`, the artifacts container: `sh`, `find`, `tar -T` (artifacts.py; Debian's busybox tar has no -T): the
  tools base;
- `alpine/git`, the clone: `git clone file://…` (repository.py): the tools base;
- `atlassian/default-image:latest`, the step when the YAML names no `image:` (config.py): the tools base;
- `docker:20.10.24-cli`, whose `/usr/local/bin/docker` is copied into the step (container.py): busybox and
  Debian 12's docker CLI, 20.10.24;
- `docker-public.packages.atlassian.com/sox/atlassian/bitbucket-pipelines-docker-daemon:v25.0.5-tlsfalse-prod-stable`,
  the docker service (service.py): Debian 13's dockerd 26 (harness/pipelines/docker-daemon.Dockerfile).

The tools base is Debian 12 from `scripts/build-debian-base.sh` (mmdebstrap + docker import, as `make image`
makes the pipe's base) with git, curl, skopeo, iptables. The emulator's image (`python3 -m registry`) is built
on the pipe image's base. Each image is built once in the main daemon under a private name whose tag hashes
its inputs (`bbc-pipelines/<role>:<hash>`), so a re-run builds nothing and the main daemon never holds an
`alpine` that is not Alpine; `install()` copies them into a second daemon under the names the runner pulls.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .engines import Engine
from .paths import REPO_ROOT
from .second_daemon import SecondDaemon

FILES = Path(__file__).resolve().parent / "pipelines"
TOOLS_PACKAGES = "ca-certificates,curl,git,iptables,skopeo,libseccomp2,procps"
PIPE_BASE = "bbc-pipe-base:bookworm"  # scripts/build-pipe-image.sh's base: python3 and venv
PIPE_BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: runs FROM scratch
DOCKER_20_CLI = Path("/usr/bin/docker")  # Debian 12's docker.io client, 20.10.24 as the runner's docker:20.10.24-cli
RUNC = Path("/usr/sbin/runc")  # the system's runc serves Debian 13's dockerd (harness/README.md)
ENGINE_BINARIES = ("usr/sbin/dockerd", "usr/sbin/docker-proxy", "usr/bin/containerd", "usr/bin/containerd-shim-runc-v2",
                   "usr/bin/docker")  # no docker-init: nothing here runs `--init`

PAUSE = "k8s-docker.packages.atlassian.com/pause:3.8"
ALPINE = "alpine:latest"
ALPINE_GIT = "alpine/git:latest"
DEFAULT_IMAGE = "atlassian/default-image:latest"
DOCKER_CLI = "docker:20.10.24-cli"
DOCKER_SERVICE = ("docker-public.packages.atlassian.com/sox/atlassian/bitbucket-pipelines-docker-daemon:"
                  "v25.0.5-tlsfalse-prod-stable")


class StandInError(RuntimeError):
    pass


@dataclass(frozen=True)
class StandIns:
    """Private image references: `images` maps each name the runner pulls to one; `emulator` is the registry."""

    images: dict[str, str]
    emulator: str


def build(python: str, engine: Engine) -> StandIns:
    """Build what is missing (mmdebstrap runs once per package list), return the references."""
    tools = _debian_base("debian", TOOLS_PACKAGES)
    _run(["bash", "scripts/build-debian-base.sh", PIPE_BASE, PIPE_BASE_PACKAGES], timeout=900)
    busybox = _image("busybox", "FROM scratch\nCOPY busybox /bin/busybox\n"
                     'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n', {"busybox": BUSYBOX})
    pause = _image("pause", f'FROM {busybox}\nCMD ["sleep", "2147483647"]\n', {})
    _require_version(DOCKER_20_CLI, "20.10.")
    cli = _image("docker-cli", f"FROM {busybox}\nCOPY docker /usr/local/bin/docker\n", {"docker": DOCKER_20_CLI})
    binaries = {f"bin/{Path(b).name}": engine.root / b for b in ENGINE_BINARIES} | {"bin/runc": RUNC}
    service = _image("docker-daemon", (FILES / "docker-daemon.Dockerfile").read_text(),
                     {**binaries, "dockerd-entrypoint.sh": FILES / "dockerd-entrypoint.sh"}, base=tools)
    images = {PAUSE: pause, ALPINE: tools, ALPINE_GIT: tools, DEFAULT_IMAGE: tools, DOCKER_CLI: cli,
              DOCKER_SERVICE: service}
    return StandIns(images=images, emulator=_emulator(python))


def install(daemon: SecondDaemon, stand_ins: StandIns) -> None:
    """Copy the stand-ins into `daemon` (docker save | load) and tag them with the names the runner pulls."""
    private = sorted({*stand_ins.images.values(), stand_ins.emulator})
    daemon.load(*private)
    for name, ref in stand_ins.images.items():
        daemon.docker("tag", ref, name, timeout=60)


def _emulator(python: str) -> str:
    sources = {f"registry/{p.relative_to(REPO_ROOT / 'registry')}": p
               for p in sorted((REPO_ROOT / "registry").rglob("*")) if p.is_file() and "__pycache__" not in p.parts}
    pins = emulator_requirements()
    dockerfile = (FILES / "emulator.Dockerfile").read_text()
    ref = _ref("emulator", dockerfile, sources, extra="\n".join(pins) + PIPE_BASE)
    if _exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="bbc-emulator-") as tmp:
        wheels = Path(tmp) / "wheels"
        (Path(tmp) / "requirements.txt").write_text("\n".join(pins) + "\n")
        # The constraints are the checkout's own environment, so the image runs what the tests run.
        freeze = _run([python, "-m", "pip", "freeze", "--exclude-editable"], timeout=120).stdout
        (Path(tmp) / "constraints.txt").write_text(freeze)
        _run([python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "-w", str(wheels),
              "-r", str(Path(tmp) / "requirements.txt"), "-c", str(Path(tmp) / "constraints.txt")], timeout=900)
        return _build(ref, dockerfile, sources, Path(tmp), base=PIPE_BASE)


def emulator_requirements() -> list[str]:
    """What the emulator imports outside the standard library (registry/**.py), as `name==version` of the
    distributions installed here: the image runs what the tests run, and a new import needs no list kept."""
    modules = set()
    for path in (REPO_ROOT / "registry").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = sorted(modules - set(sys.stdlib_module_names) - {"registry", "__future__"})
    owners = importlib.metadata.packages_distributions()
    missing = [m for m in third_party if m not in owners]
    if missing:
        raise StandInError(f"the emulator imports {missing}, which no installed distribution provides: "
                           "pin it in requirements-dev.txt and run `make .venv/.installed`")
    names = sorted({owners[m][0] for m in third_party})
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def _debian_base(role: str, packages: str) -> str:
    script = REPO_ROOT / "scripts" / "build-debian-base.sh"
    ref = f"bbc-pipelines/{role}:{_digest([packages.encode(), script.read_bytes()])}"
    _run(["bash", str(script), ref, packages], timeout=900)
    return ref


def _image(role: str, dockerfile: str, files: dict[str, Path], base: str | None = None) -> str:
    ref = _ref(role, dockerfile, files, extra=base or "")
    if _exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix=f"bbc-{role}-") as tmp:
        return _build(ref, dockerfile, files, Path(tmp), base=base)


def _build(ref: str, dockerfile: str, files: dict[str, Path], context: Path, base: str | None) -> str:
    for name, source in files.items():
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    (context / "Dockerfile").write_text(dockerfile)
    args = ["--build-arg", f"BASE={base}"] if base else []
    _run(["docker", "build", "--quiet", *args, "-t", ref, str(context)], timeout=900)
    _drop_older(ref)
    return ref


def _drop_older(ref: str) -> None:
    """Untag the other builds of this role (their inputs changed): the main daemon keeps one of each. An image
    still used (a base, a container) stays, as `docker rmi` without -f leaves it."""
    repository = ref.rsplit(":", 1)[0]
    listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
                            capture_output=True, text=True, timeout=60).stdout.split()
    older = [r for r in listed if r != ref]
    if older:
        subprocess.run(["docker", "rmi", *older], capture_output=True, timeout=120)


def _ref(role: str, dockerfile: str, files: dict[str, Path], extra: str) -> str:
    parts = [dockerfile.encode(), extra.encode()]
    for name, path in sorted(files.items()):
        if not path.is_file():
            raise StandInError(f"{path} is missing: it goes into the {role} stand-in image (docs/PIPELINES.md)")
        parts += [name.encode(), path.read_bytes()]
    return f"bbc-pipelines/{role}:{_digest(parts)}"


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()[:12]


def _require_version(binary: Path, version: str) -> None:
    r = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30) \
        if binary.is_file() else None
    if r is None or f" {version}" not in r.stdout:
        found = r.stdout.strip() if r is not None else "nothing"
        raise StandInError(f"{binary} is {found}, not the docker CLI {version}x the runner copies into a step: "
                           "install Debian 12's docker.io (`.ci/run` does)")


def _exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True, timeout=60).returncode == 0


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise StandInError(f"{' '.join(cmd[:4])} … failed with {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r
