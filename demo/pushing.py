"""Run the pipe from the checkout as a user would (`python -m pipe`), with the variables of one push."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.paths import REPO_ROOT

OUTPUT_FILE = "bbc-packages-push-container-image.json"
# The pipe's own variables are never inherited from the caller's environment.
PIPE_VARIABLES = ("IMAGE_NAME", "IMAGE_ARCHIVE", "TAGS", "WORKSPACE", "BITBUCKET_WORKSPACE", "REGISTRY",
                  "BITBUCKET_PACKAGES_USERNAME", "BITBUCKET_PACKAGES_TOKEN", "BITBUCKET_PIPE_SHARED_STORAGE_DIR",
                  "BITBUCKET_CLONE_DIR", "DEBUG", "PUSH_ENGINE", "PLATFORMS", "CACHE_FROM")


class PushFailed(RuntimeError):
    pass


def push(variables: dict[str, str], shared: Path, quiet: bool = False, timeout: float = 120) -> dict:
    """One run of the pipe; returns its output file (digest, references, ...). Raises PushFailed."""
    shared.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in PIPE_VARIABLES}
    env.update(variables, BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(shared))
    output = subprocess.PIPE if quiet else None
    r = subprocess.run([sys.executable, "-m", "pipe"], cwd=REPO_ROOT, env=env, stdout=output, stderr=output,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        said = (r.stdout or "").strip().splitlines()[-1:] if quiet else []
        raise PushFailed(f"the pipe failed with exit {r.returncode}" + (f": {said[0]}" if said else ""))
    return json.loads((shared / OUTPUT_FILE).read_text())
