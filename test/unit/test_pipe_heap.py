"""pipe/heap.py: freed 1 MiB pieces come back without fresh page faults (measured in a child process)."""
import subprocess
import sys

PROBE = """
import resource, sys
if sys.argv[1] == "keep":
    from pipe.heap import keep_freed_memory
    assert keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(12):  # as a streamed chunk: 16 pieces of 1 MiB held until it is acknowledged, then freed
    pieces = [bytes([n]) * (1024 * 1024) for n in range(16)]
    del pieces
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(run.stdout)


def test_freed_pieces_reuse_their_pages():
    default, kept = faults("default"), faults("keep")
    assert default > 10 * 16 * 200  # glibc's default trims the freed pieces: ~256 faults each, again
    assert kept < 2 * 16 * 256  # the first chunk faults its pages in; the next ones reuse them
