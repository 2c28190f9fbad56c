"""A full disk answers a clear error, leaves nothing partial, and corrupts nothing."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.accounts import default_config
from harness.registry_process import RegistryProcess
from test.helpers.oci_client import Client, digest_of, error_codes, verify_tagged_image

REPO = "acme/my-container-app"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 24 MiB tmpfs: the registry's root lives on it (needs root, as CI has)."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mountpoint)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (run as root): {r.stderr.strip()}", pytrace=False)
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def test_full_disk_answers_insufficient_storage_and_keeps_what_was_stored(small_disk):
    registry = RegistryProcess(small_disk / "root", default_config()).start()
    try:
        client = Client(registry, REPO)
        client.push_image("kept", [os.urandom(1_000_000)])

        too_big = os.urandom(40 * 1024 * 1024)
        location = client.start_upload()
        r = client.request("PUT", location, params={"digest": digest_of(too_big)}, data=too_big)
        assert r.status_code == 507, (r.status_code, r.text)
        assert error_codes(r) == ["INSUFFICIENT_STORAGE"]
        assert "disk is full" in r.json()["errors"][0]["message"]
        assert client.head_blob(digest_of(too_big)).status_code == 404
        assert list((registry.root / "uploads").iterdir()) == []  # the partial file was removed

        # Space is back: the registry goes on as before, and what it had is intact.
        assert verify_tagged_image(client, "kept") == 2
        small = os.urandom(2_000_000)
        assert client.push_blob(small) == digest_of(small)
        registry.restart()
        assert verify_tagged_image(Client(registry, REPO), "kept") == 2
    finally:
        registry.stop()
