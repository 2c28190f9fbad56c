"""Where the checkout is: the registry and the pipe are run from it (`python -m registry`, `python -m pipe`)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
