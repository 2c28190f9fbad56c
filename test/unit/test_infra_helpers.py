"""Pure parts of the test infrastructure: fault-rule counting, header rewriting, /usr slicing."""
from __future__ import annotations

import re

from harness.layered_images import _file_slices, _tar_cost
from test.helpers.http_proxy import HttpProxy, _StatusRule


def test_a_rule_lets_skip_requests_pass_then_acts_times_times_on_matching_ones_only():
    rule = _StatusRule("PATCH", re.compile(r"/blobs/uploads/"), skip=1, times=2)
    acted = [rule.take(m, p) for m, p in [
        ("PATCH", "/v2/a/blobs/uploads/1"), ("GET", "/v2/a/blobs/uploads/1"), ("PATCH", "/v2/a/manifests/x"),
        ("PATCH", "/v2/a/blobs/uploads/1"), ("PATCH", "/v2/a/blobs/uploads/2"), ("PATCH", "/v2/a/blobs/uploads/3"),
    ]]
    assert acted == [False, False, False, True, True, False]
    assert (rule.seen, rule.fired) == (4, 2)


def test_only_absolute_urls_at_the_upstream_are_rewritten_to_the_proxy():
    proxy = HttpProxy("http://127.0.0.1:5000", port=4321)
    assert proxy._rewrite("Location", "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x%3D") == \
        "http://127.0.0.1:4321/v2/a/blobs/uploads/u?_state=x%3D"
    assert proxy._rewrite("Location", "/v2/a/blobs/uploads/u") == "/v2/a/blobs/uploads/u"
    assert proxy._rewrite("Location", "http://127.0.0.1:50001/v2/") == "http://127.0.0.1:50001/v2/"
    assert proxy._rewrite("WWW-Authenticate", 'Bearer realm="http://127.0.0.1:5000/token",service="x"') == \
        'Bearer realm="http://127.0.0.1:4321/token",service="x"'
    assert proxy._rewrite("Docker-Upload-UUID", "http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_usr_slices_are_disjoint_stable_and_between_90_and_100_percent_full():
    size = 256 * 1024
    slices = [list(_file_slices(size, i)) for i in range(3)]
    assert slices[0] == list(_file_slices(size, 0))
    assert not set(slices[0]) & set(slices[1]) and not set(slices[1]) & set(slices[2])
    for files in slices:
        filled = sum(_tar_cost(str(f), f.stat().st_size) for f in files)
        assert 0.9 * size <= filled <= size
