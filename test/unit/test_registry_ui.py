"""The pages' session cookie, the roles a session may use, paging and display formats, without a server."""
from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from harness.accounts import TOKENS, default_config
from registry.config import Config, parse_config
from registry.management import principals
from registry.ui.format import human_bytes, short_digest, when
from registry.ui.paging import page_of
from registry.ui.session import KEY_FILE, Session, SessionCodec, load_or_create_key
from registry.ui.viewer import AS_CONFIGURED, member_in, roles_of, session_roles_of

CONFIG = parse_config(default_config())


def login_roles(config: Config, username: str, token: str) -> dict[str, dict[str, str]]:
    """Workspace -> repository -> role for these credentials; empty when they are valid nowhere."""
    return roles_of(config, principals(config, None, username, token))


def session_roles(config: Config, username: str, token: str) -> dict[str, dict[str, str] | str]:
    """What a session keeps of a login with these credentials."""
    return session_roles_of(config, username, principals(config, None, username, token))


class TestSessionCookie:
    def test_round_trip_keeps_user_roles_csrf_and_notice(self):
        codec = SessionCodec(b"k" * 32)
        session = codec.with_notice(codec.logged_in("boss", {"acme": {"web-app": "admin"}}), "done")
        back = codec.decode(codec.encode(session))
        expires_at = float(int(session.expires_at))
        assert back == Session(session.csrf, expires_at, "boss", {"acme": {"web-app": "admin"}}, "done")

    def test_the_token_is_never_in_the_cookie(self):
        codec = SessionCodec(b"k" * 32)
        roles = login_roles(CONFIG, "boss", TOKENS["boss"])
        value = codec.encode(codec.logged_in("boss", roles))
        assert TOKENS["boss"] not in str(jwt.decode(value, options={"verify_signature": False}))

    @pytest.mark.parametrize("mangle", [
        lambda v: v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1],  # signature changed
        lambda v: v.split(".")[0] + "." + v.split(".")[1][::-1] + "." + v.split(".")[2],  # payload changed
        lambda v: "",
        lambda v: "garbage",
    ])
    def test_tampered_cookie_is_no_session(self, mangle):
        codec = SessionCodec(b"k" * 32)
        assert codec.decode(mangle(codec.encode(codec.logged_in("reader", {"acme": {"web-app": "read"}})))) is None

    def test_a_cookie_signed_with_another_key_is_no_session(self):
        codec = SessionCodec(b"a" * 32)
        value = codec.encode(codec.logged_in("boss", {"acme": {"web-app": "admin"}}))
        assert SessionCodec(b"b" * 32).decode(value) is None

    def test_an_unsigned_token_is_refused(self):
        forged = jwt.encode({"aud": "crg-emulator-ui", "exp": int(time.time()) + 60, "csrf": "x", "sub": "boss",
                             "roles": {"acme": {"web-app": "admin"}}}, key=None, algorithm="none")
        assert SessionCodec(b"k" * 32).decode(forged) is None

    def test_expired_session_is_no_session(self):
        codec = SessionCodec(b"k" * 32, ttl_seconds=-5)
        assert codec.decode(codec.encode(codec.logged_in("boss", {}))) is None

    def test_login_gets_a_new_csrf_token(self):
        codec = SessionCodec(b"k" * 32)
        assert codec.anonymous().csrf != codec.logged_in("boss", {}).csrf

    def test_csrf_comparison(self):
        session = SessionCodec(b"k" * 32).anonymous()
        assert session.csrf_matches(session.csrf)
        assert not session.csrf_matches(session.csrf[:-1])
        assert not session.csrf_matches(None)
        assert not session.csrf_matches("")

    def test_key_is_made_once_private_and_kept(self, tmp_path: Path):
        key = load_or_create_key(tmp_path)
        assert len(key) == 32 and (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
        assert load_or_create_key(tmp_path) == key


class TestSessionRoles:
    def test_login_checks_credentials_per_workspace(self):
        assert login_roles(CONFIG, "boss", TOKENS["boss"]) == {"acme": {"web-app": "admin", "tools": "admin"}}
        assert login_roles(CONFIG, "pipelines", "globex-token-11aa") == {"globex": {"site": "write"}}
        assert login_roles(CONFIG, "outsider", TOKENS["outsider"]) == {"acme": {}}
        assert login_roles(CONFIG, "boss", "wrong") == {}
        assert login_roles(CONFIG, "nobody", TOKENS["boss"]) == {}

    def test_a_session_never_gets_more_than_its_login_or_the_config_now(self):
        codec = SessionCodec(b"k" * 32)
        # A cookie claiming admin for the reader: the config's read wins.
        claimed = codec.logged_in("reader", {"acme": {"web-app": "admin", "tools": "admin"}})
        workspace, member = member_in(CONFIG, claimed, "acme")
        assert member.roles == {"web-app": "read"}
        # A login that allowed less than the config: the login's role wins.
        _, member = member_in(CONFIG, codec.logged_in("boss", {"acme": {"web-app": "read"}}), "acme")
        assert member.roles == {"web-app": "read"} and member.role_on("tools") is None

    def test_a_login_with_the_configured_roles_keeps_the_cookie_small(self):
        repos = {f"repository-number-{i:04d}": {"project": "P"} for i in range(500)}
        big = parse_config({"workspaces": {"big": {"repositories": repos, "members": {
            "boss": {"token": "t", "roles": {r: "admin" for r in repos}}}}}})
        roles = session_roles(big, "boss", "t")
        assert roles == {"big": AS_CONFIGURED}
        codec = SessionCodec(b"k" * 32)
        session = codec.decode(codec.encode(codec.logged_in("boss", roles)))
        assert len(codec.encode(session)) < 1000  # browsers drop cookies over 4096 bytes
        _, member = member_in(big, session, "big")
        assert member.roles == {r: "admin" for r in repos}
        assert session_roles(CONFIG, "boss", TOKENS["boss"]) == {"acme": AS_CONFIGURED}

    def test_no_member_for_another_workspace_or_user_gone(self):
        codec = SessionCodec(b"k" * 32)
        assert member_in(CONFIG, codec.logged_in("pipelines", {"globex": {"site": "write"}}), "acme") is None
        assert member_in(CONFIG, codec.logged_in("ghost", {"acme": {"web-app": "admin"}}), "acme") is None
        assert member_in(CONFIG, codec.anonymous(), "acme") is None
        assert member_in(CONFIG, None, "acme") is None


class TestPaging:
    @pytest.mark.parametrize("total, requested, number, pages, start, end", [
        (0, None, 1, 1, 0, 0),
        (120, None, 1, 3, 0, 50),
        (120, "3", 3, 3, 100, 120),
        (120, "999", 3, 3, 100, 120),
        (120, "0", 1, 3, 0, 50),
        (120, "-4", 1, 3, 0, 50),
        (120, "abc", 1, 3, 0, 50),
        (50, "2", 1, 1, 0, 50),
    ])
    def test_page_of(self, total, requested, number, pages, start, end):
        page = page_of(total, requested, 50)
        assert (page.number, page.pages, page.start, page.end) == (number, pages, start, end)

    def test_links(self):
        assert (page_of(120, "2", 50).previous, page_of(120, "2", 50).next) == (1, 3)
        assert (page_of(120, "1", 50).previous, page_of(120, "3", 50).next) == (None, None)


class TestFormats:
    def test_sizes_in_decimal_units(self):
        assert [human_bytes(n) for n in (0, 999, 1000, 253_000, 1_500_000, 2 * 10**9)] == \
               ["0 B", "999 B", "1.0 KB", "253.0 KB", "1.5 MB", "2.0 GB"]

    def test_times(self):
        assert when("2026-11-25T02:02:50.560964165Z") == "2026-11-25 02:02:50 UTC"
        assert when("2026-11-25T02:02:50Z") == "2026-11-25 02:02:50 UTC"
        assert when(0.0) == "1970-01-01 00:00:00 UTC"
        assert when(None) == "–"

    def test_short_digest(self):
        assert short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
