"""`python3 -m pipe`: the pipe image's ENTRYPOINT, and how a checkout runs it."""
import sys

from .heap import keep_freed_memory
from .pipe import main

keep_freed_memory()
sys.exit(main())
