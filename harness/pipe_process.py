"""The pipe as a process, for the tests, the demo and the bench: `python -m pipe` from the checkout, or the pipe
image under `docker run`, given exactly the pipe variables passed (none inherited from the caller's environment),
bounded in time, ending in a typed result.

`run` under it starts any command so, in a session of its own: a timeout kills that session's whole group (the
pipe's children too) and nothing else. The bench measures `docker push` and `skopeo` through it as well.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from pipe.outputs import OUTPUT_FILE_NAME
from pipe.variables import VARIABLES

from .paths import REPO_ROOT

PIPE_COMMAND = (sys.executable, "-m", "pipe")
# The variables the pipe reads are never inherited from the environment of whoever starts it.
PIPE_VARIABLES = VARIABLES
OUTPUT_FILE = OUTPUT_FILE_NAME
ANSI = re.compile(r"\x1b\[[0-9;]*m")
POLL_S = 0.01


@dataclass(frozen=True)
class ProcessRun:
    """How a command ended: exit code, output (ANSI colours removed; empty when it went to a log file or to the
    terminal), wall time, and what wait4 counted for it and the children it waited for."""
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_s: float  # user + system
    sys_s: float
    minor_faults: int  # each one a page the host of a VM may have to fault in too (bench/machine.py)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (f"exit {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout}"
                f"\n--- stderr\n{self.stderr}")


@dataclass(frozen=True)
class PipeRun(ProcessRun):
    """A run of the pipe, which prints its final line (success or failure) on stdout and its log on stderr."""

    @property
    def last_line(self) -> str:
        """The pipe's final word: the last non-empty line of stdout."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"the pipe printed nothing on stdout; stderr:\n{self.stderr}"
        return lines[-1]


def run(command: Sequence[str], env: dict[str, str], timeout: float, *, cwd: Path | None = None,
        log: Path | None = None, inherit: bool = False, watch: Callable[[int], None] | None = None) -> ProcessRun:
    """Run `command` to its end; past `timeout` seconds (or on any interruption) kill its group and raise
    (subprocess.TimeoutExpired). Output goes to `log` (stdout and stderr merged), to this process's own
    (`inherit`), or is captured (the default). `watch` is called with its pid every POLL_S while it runs (a
    sampler)."""
    with ExitStack() as stack:
        if log is not None:
            out, err = stack.enter_context(open(log, "wb")), subprocess.STDOUT
        elif inherit:
            out = err = None
        else:  # files, not pipes: nothing to drain while it runs
            out, err = (stack.enter_context(tempfile.TemporaryFile()) for _ in range(2))
        started = time.monotonic()
        proc = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True)
        try:
            while not (waited := os.wait4(proc.pid, os.WNOHANG))[0]:
                if time.monotonic() - started > timeout:
                    raise subprocess.TimeoutExpired(list(command), timeout)
                if watch is not None:
                    watch(proc.pid)
                time.sleep(POLL_S)
        except BaseException:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group this call started, nothing else
            os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        seconds = time.monotonic() - started
        _, status, usage = waited
        proc.returncode = os.waitstatus_to_exitcode(status)
        captured = ["", ""]
        if log is None and not inherit:
            for i, f in enumerate((out, err)):
                f.seek(0)
                captured[i] = ANSI.sub("", f.read().decode(errors="replace"))
    return ProcessRun(proc.returncode, captured[0], captured[1], seconds, usage.ru_utime + usage.ru_stime,
                      usage.ru_stime, usage.ru_minflt)


def pipe_env(variables: dict[str, str], base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (this process's environment by default) without any pipe variable, then exactly `variables`."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in PIPE_VARIABLES}
    return {**env, **variables}


def image_command(image: str, variables: dict[str, str], docker_args: Sequence[str] = ()) -> list[str]:
    """The pipe image as Bitbucket runs it: `docker run --rm --network host`, each variable an `-e`."""
    command = ["docker", "run", "--rm", "--network", "host", *docker_args]
    for name, value in variables.items():
        command += ["-e", f"{name}={value}"]
    return [*command, image]


def run_pipe(variables: dict[str, str], *, timeout: float = 240, image: str | None = None,
             docker_args: Sequence[str] = (), base_env: dict[str, str] | None = None, wrap: Sequence[str] = (),
             log: Path | None = None, inherit: bool = False, watch: Callable[[int], None] | None = None) -> PipeRun:
    """One run of the pipe with exactly `variables`: `python -m pipe` in the checkout, or `image` under docker run
    (`docker_args` before it). `base_env`: the environment beside the variables (the docker CLI's, for an image);
    `wrap`: a command the run goes under (GNU time, a profiler). The rest as `run`."""
    if image is None:
        command, env, cwd = [*wrap, *PIPE_COMMAND], pipe_env(variables, base_env), REPO_ROOT
    else:
        command, env, cwd = [*wrap, *image_command(image, variables, docker_args)], base_env or dict(os.environ), None
    done = run(command, env, timeout, cwd=cwd, log=log, inherit=inherit, watch=watch)
    return PipeRun(**vars(done))


def read_output(directory: Path) -> dict:
    """The output file the pipe writes into BITBUCKET_PIPE_SHARED_STORAGE_DIR."""
    return json.loads((directory / OUTPUT_FILE).read_text())
