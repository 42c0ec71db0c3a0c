"""Login limits: a stranger cannot lock the real user out; guessing is capped per client and slowed per
user across clients; X-Forwarded-For counts only from a trusted proxy.

Unit tests drive ``Authenticator`` with a fake clock; the HTTP tests run the real gateway behind the
address uvicorn sees (127.0.0.1), as when it sits behind a reverse proxy on the same machine.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from gateway.auth import Authenticator, AuthSettings, RateLimited, hash_password
from gateway.login_limit import client_address, parse_networks
from tests.gateway.web.conftest import OPERATOR, auth_section
from tests.gateway.web.test_web_auth import SECRET, Clock
from tests.gateway.web.test_web_http import do_login, form_token

LIMITS = {"max_failures": 3, "window_s": 60, "client_max_failures": 6, "user_slow_after": 5,
          "slow_interval_s": 2.0, "slow_max_wait_s": 5.0}


def make_auth(tmp_path: Path, clock: Clock, **extra: object) -> Authenticator:
    table = {
        "secret_key": SECRET,
        "users": [{"username": "admin", "role": "admin", "password_hash": hash_password("admin-pass")}],
        "login_rate_limit": LIMITS,
        **extra,
    }
    return Authenticator(AuthSettings.from_table(table, data_dir=tmp_path, env={}), clock=clock)


def test_stranger_failures_do_not_lock_the_user_out(tmp_path: Path) -> None:
    clock = Clock()
    auth = make_auth(tmp_path, clock)
    for _ in range(3):
        assert auth.login("admin", "guess", "203.0.113.5") is None
    with pytest.raises(RateLimited):
        auth.login("admin", "admin-pass", "203.0.113.5")  # the guessing client is blocked, even if right
    attempt = auth.begin_login("admin", "198.51.100.7")
    assert attempt.delay_s == 0  # the real user's machine: not slowed, not blocked
    assert auth.finish_login(attempt, "admin", "admin-pass") is not None


def test_per_client_cap_across_user_names(tmp_path: Path) -> None:
    clock = Clock()
    auth = make_auth(tmp_path, clock)
    for i in range(6):
        assert auth.login(f"name{i}", "guess", "203.0.113.5") is None
    with pytest.raises(RateLimited):
        auth.login("someone-else", "guess", "203.0.113.5")


def test_user_under_attack_is_slowed_not_blocked(tmp_path: Path) -> None:
    """Many clients each below their own cap: past user_slow_after failures for the user, failing
    clients share one slow lane (one attempt per slow_interval_s), so the guess rate has a ceiling;
    a clean client still goes straight through with the right password."""
    clock = Clock()
    auth = make_auth(tmp_path, clock)
    for i in range(5):  # five clients, one failure each: the user's window reaches user_slow_after
        assert auth.login("admin", "guess", f"10.9.0.{i}") is None
    delays = [auth.begin_login("admin", f"10.9.0.{i}").delay_s for i in range(3)]
    assert delays == [0.0, 2.0, 4.0]  # the ceiling: one attempt every 2 s for this user
    with pytest.raises(RateLimited) as exc:  # the lane is 6 s long, above slow_max_wait_s = 5
        auth.begin_login("admin", "10.9.0.3")
    assert exc.value.retry_after_s >= 5
    clean = auth.begin_login("admin", "198.51.100.7")
    assert clean.delay_s == 0.0
    assert auth.finish_login(clean, "admin", "admin-pass") is not None
    clock.t += 61  # the window passed: nobody is slowed any more
    assert auth.begin_login("admin", "10.9.0.1").delay_s == 0.0
    assert auth.limiter.slowed == 3 and auth.rate_limited_logins == 1


def test_forwarded_for_only_from_trusted_proxies() -> None:
    proxies = parse_networks(["127.0.0.1", "10.1.0.0/16"])
    xff = ["198.51.100.7, 10.1.2.3"]  # client, then an inner proxy
    assert client_address("127.0.0.1", xff, proxies) == "198.51.100.7"
    assert client_address("203.0.113.9", xff, proxies) == "203.0.113.9"  # not a proxy: header ignored
    assert client_address("127.0.0.1", ["1.2.3.4, 198.51.100.7"], proxies) == "198.51.100.7"  # forged left
    assert client_address("127.0.0.1", ["nonsense"], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", [], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", xff, ()) == "127.0.0.1"  # default: no proxy trusted
    assert ipaddress.ip_address(client_address("127.0.0.1", ["2001:db8::1"], proxies))
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_networks(["not-an-ip"])


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"trusted_proxies": ["10.0.0.300"]}, "trusted_proxies"),
        ({"trusted_proxies": "127.0.0.1"}, "trusted_proxies"),
        ({"login_rate_limit": {"slow_interval_s": -1}}, "slow_interval_s"),
        ({"login_rate_limit": {"user_slow_after": 0}}, "user_slow_after"),
    ],
)
def test_bad_limit_settings_name_the_key(tmp_path: Path, table: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        AuthSettings.from_table({"secret_key": SECRET, **table}, data_dir=tmp_path, env={})


def login_from(gw_base: str, client_ip: str, user: str, password: str) -> httpx.Response:
    c = httpx.Client(base_url=gw_base, timeout=30, headers={"X-Forwarded-For": client_ip})
    try:
        return do_login(c, user, password, form_token(c))
    finally:
        c.close()


def test_behind_a_trusted_proxy_the_real_user_still_signs_in(mosquitto, gateway_factory) -> None:
    auth = {**auth_section(), "login_rate_limit": {"max_failures": 3, "window_s": 300},
            "trusted_proxies": ["127.0.0.1"]}
    gw = gateway_factory(mosquitto.url, auth=auth)
    for _ in range(3):
        assert login_from(gw.base, "203.0.113.5", OPERATOR[0], "wrong-pass").status_code == 401
    assert login_from(gw.base, "203.0.113.5", OPERATOR[0], OPERATOR[1]).status_code == 429
    assert login_from(gw.base, "198.51.100.7", OPERATOR[0], OPERATOR[1]).status_code == 303


def test_forwarded_for_ignored_without_trusted_proxies(mosquitto, gateway_factory) -> None:
    auth = {**auth_section(), "login_rate_limit": {"max_failures": 3, "window_s": 300}}
    gw = gateway_factory(mosquitto.url, auth=auth)
    for i in range(3):  # a new forged address each time does not escape the limit
        assert login_from(gw.base, f"203.0.113.{i}", OPERATOR[0], "wrong-pass").status_code == 401
    assert login_from(gw.base, "203.0.113.99", OPERATOR[0], OPERATOR[1]).status_code == 429


def test_ipv6_counted_by_64_and_long_names_cut(tmp_path: Path) -> None:
    """An IPv6 host picks any address in its /64: a fresh one per guess must not reset its count.
    A megabyte-long user name is kept as its first 64 characters."""
    clock = Clock()
    auth = make_auth(tmp_path, clock)
    for i in range(3):
        assert auth.login("admin", "guess", f"2001:db8:1:2::{i + 1:x}") is None
    with pytest.raises(RateLimited):
        auth.login("admin", "admin-pass", "2001:db8:1:2::ffff")
    assert auth.login("admin", "admin-pass", "2001:db8:1:3::1") is not None  # another /64
    assert auth.login("x" * 1_000_000, "guess", "203.0.113.7") is None
    assert max(len(user) for _, user in auth.limiter._pairs) <= 64
