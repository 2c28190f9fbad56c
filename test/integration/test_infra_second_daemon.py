"""The second dockerd: fresh, separate from the main daemon, fed by `docker save | load`, cleaned up by PID."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from harness.layered_images import FilesLayer, RandomLayer
from harness.second_daemon import SecondDaemon
from test.helpers.oci_client import docker


def _links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=30).stdout


def test_a_fresh_daemon_gets_images_from_the_main_one_and_pushes_them(second_daemon, layered_image_factory,
                                                                       reference_registry):
    info = json.loads(second_daemon.docker("info", "--format", "{{json .}}").stdout)
    assert info["DockerRootDir"].startswith(str(second_daemon.workdir))
    assert info["Driver"] == second_daemon.storage_driver
    main_root = docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert main_root and main_root != info["DockerRootDir"]

    image = layered_image_factory([RandomLayer(300_000), FilesLayer(2 << 20)])
    assert second_daemon.docker("image", "inspect", image.ref, check=False).returncode != 0  # fresh: knows nothing
    second_daemon.load(image.ref)
    loaded = json.loads(second_daemon.docker("image", "inspect", image.ref).stdout)[0]
    assert loaded["Id"] == image.image_id
    assert tuple(loaded["RootFS"]["Layers"]) == image.diff_ids

    # What the Pipelines case needs: the fresh daemon pushes to a registry on loopback.
    remote = f"{reference_registry.host}/acme/fresh:1"
    second_daemon.docker("tag", image.ref, remote)
    pushed = second_daemon.docker("push", remote, check=False)
    assert pushed.returncode == 0, pushed.stderr
    config = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--config", f"docker://{remote}"],
                            capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout)["rootfs"]["diff_ids"] == list(image.diff_ids)
    assert docker("image", "inspect", remote).returncode != 0  # the main daemon never saw that tag


def test_stop_kills_by_pid_and_removes_bridge_mounts_and_directories(docker_daemon):
    daemon = SecondDaemon().start()
    pid, bridge, workdir = daemon.pid, daemon.bridge, daemon.workdir
    try:
        assert Path(f"/proc/{pid}").exists()
        assert f" {bridge}:" in _links()
        assert daemon.socket.is_socket()
    finally:
        daemon.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert f" {bridge}:" not in _links()
    assert not workdir.exists()
    with open("/proc/self/mountinfo") as f:
        assert str(workdir) not in f.read()
    # The main daemon and its bridge are untouched.
    assert " docker0:" in _links()
    assert docker("info", "--format", "{{.ServerVersion}}").returncode == 0
    assert os.environ.get("DOCKER_HOST", "") != daemon.docker_host


def test_bridge_forwarding_adds_one_rule_for_its_bridge_and_deletes_it_at_stop(docker_daemon):
    daemon = SecondDaemon(bridge_forwarding=True).start()
    rule = ["FORWARD", "-i", daemon.bridge, "-o", daemon.bridge, "-j", "ACCEPT"]
    try:
        assert subprocess.run(["iptables", "-C", *rule], capture_output=True, timeout=30).returncode == 0
    finally:
        daemon.stop()
    assert subprocess.run(["iptables", "-C", *rule], capture_output=True, timeout=30).returncode != 0
