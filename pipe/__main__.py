"""`python3 -m pipe`: the pipe image's ENTRYPOINT, and how a checkout runs it."""
import sys

from .pipe import main

sys.exit(main())
