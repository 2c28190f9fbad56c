"""Run the pipe from the checkout as a user would (`python -m pipe`, through harness/pipe_process.py), with the
variables of one push."""
from __future__ import annotations

from pathlib import Path

from harness.pipe_process import read_output, run_pipe


class PushFailed(RuntimeError):
    pass


def push(variables: dict[str, str], shared: Path, quiet: bool = False, timeout: float = 120) -> dict:
    """One run of the pipe (its output on the terminal unless `quiet`); returns its output file (digest,
    references, ...). Raises PushFailed."""
    shared.mkdir(parents=True, exist_ok=True)
    run = run_pipe({**variables, "BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(shared)}, timeout=timeout,
                   inherit=not quiet)
    if run.returncode != 0:
        said = run.stdout.strip().splitlines()[-1:] if quiet else []
        raise PushFailed(f"the pipe failed with exit {run.returncode}" + (f": {said[0]}" if said else ""))
    return read_output(shared)
