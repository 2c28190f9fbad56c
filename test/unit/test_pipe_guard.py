"""PROTECT_TAGS and DRY_RUN as engine/guard.py decides them, and a mount that leaves the plan it was given."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipe.engine.guard import Guard
from pipe.engine.plan import Plan, mount
from pipe.engine.tags import ProtectedTags
from pipe.oci import Descriptor

OLD, NEW, IMAGE = "sha256:" + "0" * 64, "sha256:" + "1" * 64, "sha256:" + "2" * 64
PREVIOUS = {"1.0.0": OLD, "latest": OLD, "fresh": None}


def test_a_protected_tag_that_would_move_refuses_the_push_and_only_a_dry_run_goes_on_to_say_it():
    with pytest.raises(ProtectedTags, match="PROTECT_TAGS refuses the push: 1.0.0 holds " + OLD):
        Guard(("*.*.*",)).allow(PREVIOUS, NEW, IMAGE)
    changes, refused = Guard(("*.*.*",), dry_run=True).allow(PREVIOUS, NEW, IMAGE)
    assert [(c.tag, c.state, c.protected) for c in changes] == [
        ("1.0.0", f"moves from {OLD}", True), ("latest", f"moves from {OLD}", False), ("fresh", "new", False)]
    assert refused is not None and refused.startswith("PROTECT_TAGS refuses the push: 1.0.0 holds")
    assert Guard(("*.*.*",)).allow(PREVIOUS, OLD, IMAGE)[1] is None  # the same digest again: allowed
    _, unknown = Guard(("latest",), dry_run=True).allow(PREVIOUS, None, IMAGE, "a layer is compressed")
    assert f"a new manifest of image {IMAGE} (its digest is known only once a layer is compressed)" in unknown


def test_the_last_check_before_the_tags_says_no_tag_was_pushed():
    guard = Guard(("latest",))
    guard.before_tags(PREVIOUS, IMAGE, OLD)
    with pytest.raises(ProtectedTags, match="No tag was pushed"):
        guard.before_tags(PREVIOUS, IMAGE, NEW)


def test_a_dry_run_of_the_daemons_push_is_planned_natively_only_on_the_classic_store():
    assert Guard(dry_run=True).plans_natively("docker", containerd_store=False)
    assert not Guard(dry_run=True).plans_natively("docker", containerd_store=True)
    assert not Guard().plans_natively("docker", containerd_store=False)
    assert not Guard(dry_run=True).plans_natively("native", containerd_store=False)


class Lender:
    def __init__(self, lends: set[str]) -> None:
        self.lends, self.asked = lends, []

    def mount(self, digest: str, repository: str) -> bool:
        self.asked.append((digest, repository))
        return digest in self.lends


def test_mount_returns_what_it_mounted_and_leaves_the_plan_it_was_given():
    a, b = Descriptor("sha256:" + "a" * 64, 10), Descriptor("sha256:" + "b" * 64, 20)
    planned = Plan(have={}, to_mount={"ka": (a, "acme/base"), "kb": (b, "acme/base")},
                   configs={IMAGE: None}, config_mounts={IMAGE: (5, "acme/base")},
                   existing={0: ("application/json", b"{}")})
    image = SimpleNamespace(platforms=[SimpleNamespace(layers=[SimpleNamespace(key="ka"), SimpleNamespace(key="kb")])])
    client = Lender({a.digest, IMAGE})
    mounted = mount(client, planned, image)
    assert (mounted.have, mounted.mounted, mounted.to_mount) == ({"ka": a}, {"ka"}, {})
    assert (mounted.configs, mounted.config_mounts) == ({IMAGE: 5}, {})
    assert mounted.existing == {}  # kb was not lent: the manifest to reuse names it, a new one is written
    assert (planned.have, planned.mounted, set(planned.to_mount), planned.configs, set(planned.existing)) == (
        {}, set(), {"ka", "kb"}, {IMAGE: None}, {0})
    assert len(client.asked) == 3
