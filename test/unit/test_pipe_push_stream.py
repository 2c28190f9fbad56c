"""Reading recorded daemon push streams (pipe/daemon/push_stream.py) and the progress lines (pipe/progress.py)."""


from pipe.daemon.push_stream import read_push_stream
from pipe.progress import PushProgress, format_bytes, format_duration

DIGEST = "sha256:b7c38af7b30147032516710f04474090bb8c30aa7400d982f459303de23b3d5b"

# Recorded from dockerd 20.10 pushing a two-layer image to a fresh registry.
FIRST_PUSH = [
    {"status": "The push refers to repository [127.0.0.1:5077/acme/app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "68b98be0b43d"},
    {"status": "Preparing", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": "Pushing", "progressDetail": {"current": 33280, "total": 300000},
     "progress": "[=====>      ]  33.28kB/300kB", "id": "2a3c2b96d45f"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 2000}, "progress": "[=>  ] 512B/2kB",
     "id": "68b98be0b43d"},
    {"status": "Pushing", "progressDetail": {"current": 3584, "total": 2000}, "progress": "[====>] 3.584kB",
     "id": "68b98be0b43d"},
    {"status": "Pushing", "progressDetail": {"current": 301568, "total": 300000}, "progress": "[====>] 301.6kB",
     "id": "2a3c2b96d45f"},
    {"status": "Pushed", "progressDetail": {}, "id": "68b98be0b43d"},
    {"status": "Pushed", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": f"a: digest: {DIGEST} size: 735"},
    {"progressDetail": {}, "aux": {"Tag": "a", "Digest": DIGEST, "Size": 735}},
]

# The same image again: nothing to upload.
REPUSH = [
    {"status": "The push refers to repository [127.0.0.1:5077/acme/app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "68b98be0b43d"},
    {"status": "Preparing", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "68b98be0b43d"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": f"a: digest: {DIGEST} size: 735"},
    {"progressDetail": {}, "aux": {"Tag": "a", "Digest": DIGEST, "Size": 735}},
]

DENIED = [
    {"status": "The push refers to repository [127.0.0.1:5079/acme/app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "68b98be0b43d"},
    {"status": "Waiting", "progressDetail": {}, "id": "68b98be0b43d"},
    {"errorDetail": {"message": "denied"}, "error": "denied"},
]

# The daemon retried a layer on a 5xx and gave up.
SERVER_ERROR = [
    {"status": "The push refers to repository [127.0.0.1:5079/acme/app]"},
    {"status": "Preparing", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 300000}, "id": "2a3c2b96d45f"},
    {"status": "Retrying in 5 seconds", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": "Retrying in 4 seconds", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": "Retrying in 1 second", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 300000}, "id": "2a3c2b96d45f"},
    {"status": "Retrying in 10 seconds", "progressDetail": {}, "id": "2a3c2b96d45f"},
    {"errorDetail": {"message": "received unexpected HTTP status: 500 Internal Server Error"},
     "error": "received unexpected HTTP status: 500 Internal Server Error"},
]



def succeeded(outcome) -> bool:
    return outcome.error is None and outcome.digest is not None

def test_first_push():
    outcome = read_push_stream(iter(FIRST_PUSH))
    assert succeeded(outcome)
    assert (outcome.tag, outcome.digest, outcome.manifest_size) == ("a", DIGEST, 735)
    assert (outcome.layers_uploaded, outcome.layers_existing) == (2, 0)
    assert outcome.uploaded_bytes == 3584 + 301568
    assert not outcome.uploaded_nothing


def test_repush_uploads_nothing():
    outcome = read_push_stream(REPUSH)
    assert succeeded(outcome) and outcome.uploaded_nothing
    assert (outcome.layers_uploaded, outcome.layers_existing, outcome.uploaded_bytes) == (0, 2, 0)


def test_mounted_layers_count_as_existing():
    outcome = read_push_stream([{"status": "Mounted from acme/other", "progressDetail": {}, "id": "x"},
                                {"aux": {"Tag": "a", "Digest": DIGEST, "Size": 1}}])
    assert outcome.layers_existing == 1 and outcome.uploaded_nothing


def test_error_record_fails_the_push():
    outcome = read_push_stream(DENIED)
    assert not succeeded(outcome) and outcome.error == "denied"


def test_whole_stream_is_read_and_first_error_kept():
    seen = []
    stream = DENIED + [{"error": "second"}, {"aux": {"Tag": "a", "Digest": DIGEST, "Size": 1}}]
    outcome = read_push_stream(stream, on_record=seen.append)
    assert len(seen) == len(stream)
    assert outcome.error == "denied" and not succeeded(outcome)


def test_error_without_error_detail():
    assert read_push_stream([{"error": "boom"}]).error == "boom"


def test_stream_without_digest_is_not_a_success():
    outcome = read_push_stream(FIRST_PUSH[:-2])
    assert outcome.error is None and not succeeded(outcome)


# Recorded from dockerd 26.1 with the containerd image store: no `aux` record, the digest only in the
# status line (and layers reported by the first 12 hex digits of their compressed digest).
CONTAINERD_PUSH = [
    {"status": "The push refers to repository [127.0.0.1:5099/acme/img]"},
    {"status": "Pushed", "progressDetail": {}, "id": "4267170d6884"},
    {"status": "Pushed", "progressDetail": {}, "id": "b9531094b65b"},
    {"status": "x: digest: sha256:7d697a2c40ca063d2d72d98d31458e6b8a2658847226584d4c78d70f5ff34627 size: 760"},
]


def test_the_containerd_stores_status_line_gives_the_digest():
    outcome = read_push_stream(CONTAINERD_PUSH)
    assert succeeded(outcome)
    assert (outcome.tag, outcome.digest, outcome.manifest_size) == (
        "x", "sha256:7d697a2c40ca063d2d72d98d31458e6b8a2658847226584d4c78d70f5ff34627", 760)
    assert (outcome.layers_uploaded, outcome.layers_existing) == (2, 0)


def test_a_status_line_that_only_looks_like_a_digest_line_is_not_one():
    for status in ("x: digest: sha256:abc size: 1", "x y: digest: sha256:" + "a" * 64 + " size: 1",
                   "x: digest: sha256:" + "a" * 64 + " size: ", "The push refers to repository [h/x: digest]"):
        assert read_push_stream([{"status": status}]).digest is None, status


def test_junk_records_are_ignored():
    junk = ["text", None, {"status": "Pushing", "id": "x", "progressDetail": None}]
    assert succeeded(read_push_stream(junk + REPUSH))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def progress():
    lines, debug, clock = [], [], Clock()
    return PushProgress(lines.append, debug.append, clock=clock, interval=30, min_gap=5), lines, debug, clock


def pushing(layer, current, total):
    return {"status": "Pushing", "progressDetail": {"current": current, "total": total}, "id": layer}


def test_progress_of_a_quick_push_is_one_line_per_layer_start_and_end():
    reporter, lines, debug, _ = progress()
    for record in FIRST_PUSH:
        reporter(record)
    assert lines == [
        "Layer 2a3c2b96d45f: uploading 300.0 kB",
        "Layer 68b98be0b43d: uploading 2.0 kB",
        "Layer 68b98be0b43d: pushed in 0.0 s",
        "Layer 2a3c2b96d45f: pushed in 0.0 s",
    ]
    assert "The push refers to repository [127.0.0.1:5077/acme/app]" in debug


def test_progress_of_a_repush_is_silent_at_info():
    reporter, lines, debug, _ = progress()
    for record in REPUSH:
        reporter(record)
    assert lines == []
    assert "Layer 68b98be0b43d: layer already exists, nothing to upload" in debug


def test_progress_is_throttled_on_a_long_upload():
    reporter, lines, _, clock = progress()
    total = 1000_000_000
    # 10 000 records over 200 s: the daemon sends many per second.
    for i in range(10_000):
        clock.now = i * 0.02
        reporter(pushing("abc", (i + 1) * total // 10_000, total))
    clock.now = 200
    reporter({"status": "Pushed", "progressDetail": {}, "id": "abc"})
    assert lines[0] == "Layer abc: uploading 1.0 GB"
    assert lines[-1] == "Layer abc: pushed in 3 min 20 s"
    middle = lines[1:-1]
    assert 3 <= len(middle) <= 10  # quarters plus an occasional time-based line, never a flood
    assert middle[0] == "Layer abc: 150.1 MB of 1.0 GB (15%)"  # 30 s without a line
    assert "Layer abc: 250.0 MB of 1.0 GB (25%)" in middle  # a quarter crossed


def test_quarter_lines_respect_the_minimum_gap():
    reporter, lines, _, clock = progress()
    reporter(pushing("abc", 0, 100))
    clock.now = 1
    reporter(pushing("abc", 90, 100))  # three quarters at once, but only 1 s after the first line
    assert len(lines) == 1
    clock.now = 6
    reporter(pushing("abc", 95, 100))
    assert lines[-1] == "Layer abc: 95 B of 100 B (95%)"


def test_unknown_total_reports_by_time():
    reporter, lines, _, clock = progress()
    reporter(pushing("abc", 10, 0))
    clock.now = 31
    reporter(pushing("abc", 5000, 0))
    assert lines == ["Layer abc: uploading", "Layer abc: 5.0 kB sent"]


def test_daemon_retries_get_one_line_per_round():
    reporter, lines, _, _ = progress()
    for record in SERVER_ERROR:
        reporter(record)
    assert lines == [
        "Layer 2a3c2b96d45f: uploading 300.0 kB",
        "Layer 2a3c2b96d45f: upload failed; the Docker daemon is retrying in 5 seconds",
        "Layer 2a3c2b96d45f: uploading 300.0 kB",
        "Layer 2a3c2b96d45f: upload failed; the Docker daemon is retrying in 10 seconds",
    ]
    assert read_push_stream(SERVER_ERROR).error == "received unexpected HTTP status: 500 Internal Server Error"


def test_formatting():
    assert [format_bytes(n) for n in (0, 999, 1000, 1_500_000, 32 * 10**9)] == \
        ["0 B", "999 B", "1.0 kB", "1.5 MB", "32.0 GB"]
    assert format_duration(1.234) == "1.2 s"
    assert format_duration(421) == "7 min 1 s"
