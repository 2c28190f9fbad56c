"""The pipe: push an image to the Bitbucket container registry. Run it as `python3 -m pipe`."""
import os

# The toolkit imports GitPython on some paths; it must not insist on a git binary in the pipe image.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
