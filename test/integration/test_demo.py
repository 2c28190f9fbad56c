"""`make demo` (python -m demo) as a newcomer runs it: with the Docker daemon, and with none reachable.

Without a daemon, DOCKER_HOST points at a socket that does not exist, so `docker info` fails as on a
machine with no Docker service; the demo must still push, read back and match the digests. Its
temporary directory goes under the test's TMPDIR, so what it leaves behind can be seen.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

from harness.paths import REPO_ROOT
from test.helpers.oci_client import docker

DIGEST = r"(sha256:[0-9a-f]{64})"
NO_DAEMON = "unix:///nonexistent.sock"


def run_demo(tmp_path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "tmp").mkdir()
    environment = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), **env}
    return subprocess.run([sys.executable, "-m", "demo"], cwd=REPO_ROOT, env=environment, capture_output=True,
                          text=True, timeout=90)


def digests(stdout: str, *labels: str) -> dict[str, str]:
    found = {label: re.search(rf"{label} digest:\s+{DIGEST}", stdout) for label in labels}
    assert all(found.values()), f"missing digest lines {[k for k, v in found.items() if not v]}:\n{stdout}"
    return {label: m.group(1) for label, m in found.items()}


def test_the_demo_needs_no_daemon(tmp_path):
    assert subprocess.run(["docker", "info"], capture_output=True, env={**os.environ, "DOCKER_HOST": NO_DAEMON},
                          timeout=30).returncode != 0  # the premise: no daemon answers
    r = run_demo(tmp_path, DOCKER_HOST=NO_DAEMON)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert "no Docker daemon answers" in r.stdout and "demo passed" in r.stdout
    found = digests(r.stdout, "written", "pushed", "pulled")
    assert len(set(found.values())) == 1, found
    skopeo = re.search(rf"skopeo copy:\s+{DIGEST}", r.stdout)
    assert skopeo and skopeo.group(1) == found["pushed"], r.stdout  # skopeo is installed here
    assert "With a Docker daemon" in r.stdout
    assert list((tmp_path / "tmp").iterdir()) == []  # everything it made is gone


def test_the_demo_with_a_daemon_pulls_with_docker(docker_daemon, tmp_path):
    r = run_demo(tmp_path)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert "docker pull" in r.stdout and "no Docker daemon" not in r.stdout
    found = digests(r.stdout, "pushed", "pulled")
    assert found["pushed"] == found["pulled"]
    assert list((tmp_path / "tmp").iterdir()) == []
    left = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", timeout=60).stdout.split()
    assert not [ref for ref in left if "/demo/demo-app:" in ref or re.fullmatch(r"demo-app:[0-9a-f]{8}", ref)]

