"""harness/pipe_process.py: the one launcher of the pipe (tests, demo, bench) and the bounded runner under it."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from harness import pipe_process

PRINT_BOTH = "import sys; print('\\x1b[31mout\\x1b[0m'); print('err', file=sys.stderr); sys.exit(3)"


def test_output_is_captured_apart_without_colours_and_the_exit_code_kept() -> None:
    done = pipe_process.run([sys.executable, "-c", PRINT_BOTH], {}, 30)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    assert done.seconds > 0 and done.cpu_s > 0


def test_a_log_file_gets_both_streams(tmp_path) -> None:
    log = tmp_path / "run.log"
    done = pipe_process.run([sys.executable, "-c", PRINT_BOTH], {}, 30, log=log)
    assert done.stdout == "" and sorted(log.read_text().split()) == sorted(["\x1b[31mout\x1b[0m", "err"])


def test_a_timeout_kills_the_whole_group_and_raises(tmp_path) -> None:
    """The grandchild (a `sleep` the shell started) goes too: nothing of the run outlives it."""
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        pipe_process.run(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], {}, 1)
    assert time.monotonic() - started < 10
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_pipe_gets_exactly_the_variables_given() -> None:
    env = pipe_process.pipe_env({"TAGS": "a"}, base={"TAGS": "leaked", "DEBUG": "true", "HOME": "/h"})
    assert env == {"TAGS": "a", "HOME": "/h"}


def test_the_image_command_passes_each_variable() -> None:
    assert pipe_process.image_command("img:1", {"A": "1"}, ["-v", "/x:/x"]) == [
        "docker", "run", "--rm", "--network", "host", "-v", "/x:/x", "-e", "A=1", "img:1"]


def test_the_pipe_from_the_checkout_names_what_is_missing() -> None:
    done = pipe_process.run_pipe({}, timeout=60, base_env={"IMAGE_NAME": "inherited", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1 and "IMAGE_NAME is required" in done.stdout, str(done)
