"""Faults with real processes and real sockets (SIGKILL and a full disk: test_registry_crash.py,
test_registry_disk_full.py):

- a client that disconnects in the middle of an upload leaves nothing visible, and its session
  and partial file are cleaned up;
- the pipe against a registry restarted (SIGTERM, then started again on the same root and port)
  while the pipe pushes: it retries and succeeds, or fails with a clear message, in bounded time.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
from functools import partial
from pathlib import Path

import pytest

from harness.accounts import TOKENS
from harness.registry_process import RegistryProcess
from test.helpers import waiting
from test.helpers.oci_client import Client, digest_of, error_codes, verify_tagged_image
from test.helpers.pipe_runner import PipeRun, assert_no_secret, pipe_variables, run_pipe

APP = "acme/my-container-app"
DECLARED = 10 * 1024 * 1024
SENT = 6 * 1024 * 1024  # more than the registry buffers before writing (FLUSH_BYTES)
HANG_GUARD = 180  # seconds; not a performance claim, only proof that nothing waits forever


def upload_files(registry: RegistryProcess) -> list[Path]:
    return list((registry.root / "uploads").iterdir())


# The cuts here are timed against uploads in flight: poll every 50 ms, give up after 15 s unless told otherwise.
wait_for = partial(waiting.wait_for, timeout=15.0, interval=0.05)


def figures(registry: RegistryProcess) -> tuple[int, int]:
    s = registry.api("GET", "/workspaces/acme/storage").json()
    return s["blobs"], s["stored_bytes"]


def send_part_then_disconnect(registry: RegistryProcess, method: str, path: str, token: str, data: bytes,
                              *, chunked: bool, reset: bool) -> None:
    """Send the head of a request announcing DECLARED bytes, then SENT of them, then go away.

    Returns only once the registry holds part of the body in an upload file, so the disconnect
    happens in the middle of the upload, not before it.
    """
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {DECLARED}"
    head = (f"{method} {path} HTTP/1.1\r\nHost: {registry.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/octet-stream\r\n{framing}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", registry.port), timeout=10)
    try:
        sock.sendall(head)
        if chunked:
            # One chunk that announces the whole DECLARED size, cut off after SENT bytes.
            sock.sendall(f"{DECLARED:x}\r\n".encode())
        sock.sendall(data[:SENT])
        wait_for(lambda: any(p.stat().st_size > 0 for p in upload_files(registry)), "part of the body on disk")
    finally:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
        sock.close()


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_a_monolithic_upload_cut_short_leaves_nothing(registry, reset):
    client = Client(registry, APP)
    kept = os.urandom(100_000)
    client.push_blob(kept)
    before = figures(registry)
    data = os.urandom(DECLARED)
    digest = digest_of(data)
    for _ in range(3):
        send_part_then_disconnect(registry, "POST", f"/v2/{APP}/blobs/uploads/?digest={digest}", client.token(),
                                  data, chunked=False, reset=reset)
        # Nobody can resume a monolithic upload: its session and partial file go, within a bounded wait.
        wait_for(lambda: upload_files(registry) == [], "the partial upload file to be removed")
        assert client.head_blob(digest).status_code == 404
        assert figures(registry) == before
    # The registry is fine: the blob uploads whole when the client sends it all, and what was there still is.
    assert client.push_blob(data) == digest
    assert client.get_blob(digest).content == data
    assert client.get_blob(digest_of(kept)).content == kept


def held(client: Client, location: str) -> int:
    r = client.request("GET", location)
    assert r.status_code == 204, r.text
    end = int(r.headers["Range"].split("-")[1])
    return end + 1 if end else 0


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("request_kind", ["PATCH", "PATCH chunked", "final PUT"])
def test_a_chunk_cut_short_is_kept_whole_and_the_upload_resumes(registry, request_kind, reset):
    """What arrived before the cut stays in the session; the status says exactly how much; the client
    sends the rest from there and the blob verifies. Nothing becomes visible before that."""
    client = Client(registry, APP)
    before = figures(registry)
    data = os.urandom(DECLARED)
    digest = digest_of(data)
    location = client.start_upload()
    method = "PUT" if request_kind == "final PUT" else "PATCH"
    path = location + (f"?digest={digest}" if method == "PUT" else "")
    send_part_then_disconnect(registry, method, path, client.token(), data,
                              chunked=request_kind == "PATCH chunked", reset=reset)
    # The registry finishes writing what it received; the status then matches the file, byte for byte.
    wait_for(lambda: held(client, location) == sum(p.stat().st_size for p in upload_files(registry)) > 0,
             "the upload status to match the bytes kept")
    offset = held(client, location)
    assert 0 < offset <= SENT
    assert client.head_blob(digest).status_code == 404 and figures(registry) == before
    r = client.request("PATCH", location, data=data[offset:],
                       headers={"Content-Range": f"{offset}-{DECLARED - 1}",
                                "Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    r = client.request("PUT", r.headers["Location"], params={"digest": digest}, data=b"")
    assert r.status_code == 201, r.text
    assert client.get_blob(digest).content == data
    assert upload_files(registry) == []


def test_a_cancelled_upload_removes_what_it_kept(registry):
    client = Client(registry, APP)
    data = os.urandom(DECLARED)
    location = client.start_upload()
    send_part_then_disconnect(registry, "PATCH", location, client.token(), data, chunked=False, reset=True)
    wait_for(lambda: held(client, location) > 0, "part of the chunk kept")
    assert client.request("DELETE", location).status_code == 204
    wait_for(lambda: upload_files(registry) == [], "the partial upload file to be removed")
    r = client.request("GET", location)
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


def test_the_pipe_survives_a_registry_restart_in_the_middle_of_its_push(registry, image_factory):
    local = image_factory(layers=[20 * 1024 * 1024] * 3)
    variables = pipe_variables(registry.host, local, TAGS="restarted", DEBUG="true")
    result: list[PipeRun | BaseException] = []

    def push() -> None:
        try:
            result.append(run_pipe(variables, timeout=HANG_GUARD))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            result.append(exc)

    pipe = threading.Thread(target=push)
    pipe.start()
    # Once a layer is streaming into the registry (an upload file of more than 1 MiB), restart it.
    wait_for(lambda: any(p.stat().st_size > 1024 * 1024 for p in upload_files(registry)) or not pipe.is_alive(),
             "the pipe to start uploading a layer", timeout=120)
    assert pipe.is_alive(), f"the pipe ended before the registry could be restarted: {result}"
    registry.stop()  # SIGTERM: in-flight requests end, sessions are dropped
    stopped_mid_push = pipe.is_alive()
    registry.start()  # the same root and the same port
    pipe.join(HANG_GUARD + 20)
    assert not pipe.is_alive(), "the pipe hung after the restart"
    assert stopped_mid_push, "the push had finished before the registry stopped: nothing was tried"
    run = result[0]
    assert isinstance(run, PipeRun), run
    assert run.seconds < HANG_GUARD, str(run)
    assert "Traceback" not in run.output, str(run)
    assert_no_secret(run, "pipelines", TOKENS["pipelines"])
    # The daemon or the pipe noticed the interruption and tried again.
    assert "retrying" in run.stderr.lower(), str(run)
    client = Client(registry, APP, user="reader", actions="pull")
    if run.returncode == 0:
        assert verify_tagged_image(client, "restarted") == 4
        assert client.get_manifest("restarted").headers["Docker-Content-Digest"] in run.last_line, str(run)
    else:
        line = run.last_line
        assert line.startswith("✖") and registry.host in line, str(run)
        assert client.get_manifest("restarted").status_code == 404
    retries = [line.strip() for line in run.stderr.splitlines() if "retrying" in line.lower()]
    print(f"\npipe after a registry restart mid-push: exit {run.returncode} in {run.seconds:.1f} s: {run.last_line}",
          *retries, sep="\n  ")
