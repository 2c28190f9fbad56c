"""The Docker daemon's own push (PUSH_ENGINE=docker, and `auto` on the containerd image store), beside the
native engine (engine/): the daemon's API (api.py), its push stream (push_stream.py), the words of its
registry errors (words.py), and the push with the pipe's checks around it (push.py).

Nothing is imported here: the docker SDK loads only when a daemon is used (a copy from a registry loads none).
"""
