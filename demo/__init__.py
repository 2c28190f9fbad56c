"""`make demo` and `make serve`: the pipe and the emulator on one machine, for a newcomer.

`python -m demo` pushes an image with the pipe to the emulator on loopback and reads it back
(with a Docker daemon: built by docker, pulled by docker; without one: an OCI layout written here,
read back over the registry API). `python -m demo.serve` keeps an emulator running with a sample
workspace to click through. Neither is test machinery; both run the pipe and the registry as a
user would, as processes.
"""
