"""gateway.auth on a minimal FastAPI app: settings parsing, roles, tokens, CSRF, rate limit."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from gateway.auth import (
    SESSION_COOKIE,
    Authenticator,
    AuthSettings,
    Principal,
    RateLimited,
    add_user,
    bootstrap_admin,
    build_authenticator,
    hash_password,
    load_users_file,
    new_api_token,
    remove_user,
    require_role,
    verify_password,
)

SECRET = "s" * 40


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_hash_and_verify() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong horse")
    assert not verify_password("not-a-hash", "correct horse")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"secret_key": "short"}, r"\[auth\] secret_key"),
        ({"secret_key": SECRET, "session_ttl_s": 0}, r"\[auth\] session_ttl_s"),
        ({"secret_key": SECRET, "session_ttl_s": "1h"}, r"\[auth\] session_ttl_s"),
        ({"secret_key": SECRET, "login_rate_limit": {"max_failures": -1}}, "max_failures"),
        ({"secret_key": SECRET, "login_rate_limit": {"burst": 3}}, "login_rate_limit"),
        (
            {
                "secret_key": SECRET,
                "users": [{"username": "a", "role": "boss", "password_hash": "$argon2id$x"}],
            },
            r"\[auth\] users\.0\.role",
        ),
        (
            {"secret_key": SECRET, "users": [{"username": "a", "role": "admin", "password_hash": "plain"}]},
            r"\[auth\] users\.0\.password_hash",
        ),
        (
            {"secret_key": SECRET, "api_tokens": [{"name": "t", "role": "viewer", "token_sha256": "xyz"}]},
            r"\[auth\] api_tokens\.0\.token_sha256",
        ),
        ({"secret_key": SECRET, "cookie_secure": "yes"}, r"\[auth\] cookie_secure"),
        ({"secret_key": SECRET, "colour": "red"}, "unknown key"),
    ],
)
def test_bad_settings_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        AuthSettings.from_table(table, env={})


def test_secret_sources(tmp_path: Path) -> None:
    assert AuthSettings.from_table({}, env={"MOTCUA_SECRET_KEY": "e" * 40}).secret_key_source == "env"
    first = AuthSettings.from_table({}, data_dir=tmp_path, env={})
    assert first.secret_key_source == "file"
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    again = AuthSettings.from_table({}, data_dir=tmp_path, env={})
    assert again.secret_key == first.secret_key  # persisted, so sessions survive a restart
    eph = AuthSettings.from_table({}, env={})
    assert eph.secret_key_source == "ephemeral" and len(eph.secret_key) >= 32


def test_users_file_and_bootstrap(tmp_path: Path) -> None:
    s = AuthSettings.from_table({"secret_key": SECRET}, data_dir=tmp_path, env={})
    assert bootstrap_admin(s, env={}) is None
    admin = bootstrap_admin(s, env={"MOTCUA_ADMIN_PASSWORD": "bootstrap-pass"})
    assert admin is not None and admin.role == "admin" and admin.username == "admin"
    assert bootstrap_admin(s, env={"MOTCUA_ADMIN_PASSWORD": "other-pass1"}) is None  # admin exists
    add_user(s.users_file, "op", "operator-pass", "operator")
    add_user(s.users_file, "op", "operator-pass2", "viewer")  # replaces
    users = {u.username: u for u in load_users_file(s.users_file)}
    assert set(users) == {"admin", "op"} and users["op"].role == "viewer"
    assert "operator-pass" not in s.users_file.read_text()
    auth = Authenticator(s)
    session = auth.login("op", "operator-pass2", "1.2.3.4")
    assert session is not None
    assert auth.login("op", "operator-pass", "1.2.3.4") is None
    cookie = auth.session_cookie(session)
    before = s.users_file.stat().st_mtime_ns
    assert remove_user(s.users_file, "op") is True and remove_user(s.users_file, "op") is False
    os.utime(s.users_file, ns=(before, before))  # a coarse clock (FAT, same second): mtime unchanged
    assert {u.username for u in load_users_file(s.users_file)} == {"admin"}
    assert auth.login("op", "operator-pass2", "1.2.3.5") is None  # the running gateway sees the removal
    assert auth.read_session(cookie) is None  # and an open session of that user ends


def _settings(tmp_path: Path, **extra: object) -> tuple[AuthSettings, str]:
    token, digest = new_api_token()
    table = {
        "secret_key": SECRET,
        "users": [
            {"username": "viewer", "role": "viewer", "password_hash": hash_password("viewer-pass")},
            {"username": "op", "role": "operator", "password_hash": hash_password("operator-pass")},
        ],
        "api_tokens": [{"name": "ci", "role": "operator", "token_sha256": digest}],
        "login_rate_limit": {"max_failures": 3, "window_s": 60},
        **extra,
    }
    return AuthSettings.from_table(table, data_dir=tmp_path, env={}), token


def test_rate_limit_per_ip_and_user(tmp_path: Path) -> None:
    s, _ = _settings(tmp_path)
    clock = Clock()
    auth = Authenticator(s, clock=clock)
    for _ in range(3):
        assert auth.login("op", "bad-password", "10.0.0.1") is None
    with pytest.raises(RateLimited) as exc:
        auth.login("op", "operator-pass", "10.0.0.1")  # even the right password is refused now
    assert 1 <= exc.value.retry_after_s <= 60
    assert auth.login("op", "operator-pass", "10.0.0.2") is not None  # another IP is not blocked
    clock.t += 61
    assert auth.login("op", "operator-pass", "10.0.0.1") is not None  # window passed
    assert auth.rejected_logins == 3 and auth.rate_limited_logins == 1


def test_rate_limit_holds_for_guesses_sent_at_once(tmp_path: Path) -> None:
    """20 guesses in parallel: only max_failures (3) reach the password check, however the slow hash
    check interleaves; successful logins leave nothing counted against the IP."""
    s, _ = _settings(tmp_path)
    auth = Authenticator(s)
    start = threading.Barrier(20)

    def guess(i: int) -> str:
        start.wait()
        try:
            return "rejected" if auth.login("op", f"guess-{i}", "10.0.0.9") is None else "accepted"
        except RateLimited:
            return "limited"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(guess, range(20)))
    assert outcomes.count("rejected") == 3 and outcomes.count("limited") == 17
    assert auth.rejected_logins == 3
    for _ in range(4 * 3 + 1):  # more than the per-IP cap, all with the right password
        assert auth.login("viewer", "viewer-pass", "10.0.0.8") is not None


def test_session_expiry_revocation_and_removed_user(tmp_path: Path) -> None:
    s, _ = _settings(tmp_path, session_ttl_s=60)
    auth = Authenticator(s)
    p = auth.login("op", "operator-pass", "ip")
    assert p is not None
    cookie = auth.session_cookie(p)
    back = auth.read_session(cookie)
    assert back is not None and back.role == "operator" and back.csrf == p.csrf
    assert auth.read_session(cookie[:-2] + "xx") is None  # tampered
    other = Authenticator(AuthSettings.from_table({"secret_key": "t" * 40}, env={}))
    assert other.read_session(cookie) is None  # another key
    auth.revoke(back)
    assert auth.read_session(cookie) is None


def _app(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    app.state.auth = auth

    @app.get("/api/v1/thing")
    def read(p: Principal = Depends(require_role("viewer"))) -> dict:
        return {"who": p.name}

    @app.post("/api/v1/thing")
    def write(p: Principal = Depends(require_role("operator"))) -> dict:
        return {"who": p.name, "via": p.via}

    @app.get("/page")
    def page(p: Principal = Depends(require_role("operator"))) -> dict:
        return {"who": p.name}

    @app.post("/login-as/{name}")
    def login_as(name: str, request: Request) -> dict:
        password = {"viewer": "viewer-pass", "op": "operator-pass"}[name]
        principal = auth.login(name, password, request.client.host)
        assert principal is not None
        return {"cookie": auth.session_cookie(principal), "csrf": principal.csrf}

    return app


def test_require_role_tokens_cookies_and_csrf(tmp_path: Path) -> None:
    s, token = _settings(tmp_path)
    client = TestClient(_app(Authenticator(s)), follow_redirects=False)

    r = client.get("/api/v1/thing")
    assert r.status_code == 401 and r.json()["detail"] == "authentication required"
    r = client.get("/page", headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/page"

    assert client.get("/api/v1/thing", headers={"authorization": "Bearer wrong"}).status_code == 401
    r = client.post("/api/v1/thing", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json() == {"who": "ci", "via": "token"}  # bearer: no CSRF needed

    login = client.post("/login-as/viewer").json()
    client.cookies.set(SESSION_COOKIE, login["cookie"])
    assert client.get("/api/v1/thing").json() == {"who": "viewer"}
    r = client.post("/api/v1/thing", headers={"X-CSRF-Token": login["csrf"]})
    assert r.status_code == 403 and "operator" in r.json()["detail"]

    login = client.post("/login-as/op").json()
    client.cookies.set(SESSION_COOKIE, login["cookie"])
    r = client.post("/api/v1/thing")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.post("/api/v1/thing", headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    r = client.post("/api/v1/thing", data={"csrf_token": login["csrf"]})
    assert r.status_code == 200 and r.json()["via"] == "session"
    r = client.post("/api/v1/thing", headers={"X-CSRF-Token": login["csrf"]})
    assert r.status_code == 200


def test_unwired_app_builds_authenticator_from_settings(tmp_path: Path) -> None:
    class Fake:
        auth = {"secret_key": SECRET}
        data_dir = tmp_path

    app = FastAPI()
    app.state.settings = Fake()

    @app.get("/api/v1/x")
    def x(p: Principal = Depends(require_role("viewer"))) -> dict:
        return {}

    client = TestClient(app)
    assert client.get("/api/v1/x").status_code == 401
    assert isinstance(app.state.auth, Authenticator)
    assert build_authenticator(app.state.auth.settings, env={}).settings.secret_key == SECRET


def test_failure_tracking_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.login_limit as limit_mod

    monkeypatch.setattr(limit_mod, "MAX_TRACKED", 5)
    s, _ = _settings(tmp_path)
    clock = Clock()
    auth = Authenticator(s, clock=clock)
    for i in range(6):
        auth.login(f"user{i}", "bad-password", f"10.0.1.{i}")
    clock.t += 61  # those windows are now stale
    for i in range(3):
        auth.login(f"other{i}", "bad-password", "10.0.2.1")
    assert auth.limiter.tracked() <= 3
    assert auth.login("other0", "bad-password", "10.0.2.1") is None
    assert auth.login("other0", "bad-password", "10.0.2.1") is None
    with pytest.raises(RateLimited):  # recent failures survive the clean-up and still count
        auth.login("other0", "bad-password", "10.0.2.1")
