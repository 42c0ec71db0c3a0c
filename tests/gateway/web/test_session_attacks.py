"""A session cookie after logout and after a password change (real gateway, real Mosquitto, HTTP).

Before: a logout was remembered in the process's memory only, so a logged-out cookie (copied from
a shared computer, say) was valid again after the gateway restarted, for the rest of its 8 hours;
and resetting a leaked password left the attacker's open session running."""

from __future__ import annotations

import re

import httpx
import pytest

from gateway.auth import SESSION_COOKIE, add_user
from tests.gateway.conftest import RunningGateway

USER, PASSWORD = "op", "operator-pass-1"
PROTECTED = "/api/v1/quarantine"  # operators only


def _sign_in(gw: RunningGateway, password: str = PASSWORD) -> tuple[str, str]:
    """(session cookie, CSRF token) from the real login form."""
    with httpx.Client(base_url=gw.base) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"username": USER, "password": password, "csrf_token": token})
        assert r.status_code == 303, r.text
        cookie = c.cookies[SESSION_COOKIE]
        page = c.get("/fleet").text
        return cookie, re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def _status(gw: RunningGateway, cookie: str) -> int:
    with httpx.Client(base_url=gw.base, cookies={SESSION_COOKIE: cookie}) as c:
        return c.get(PROTECTED).status_code


@pytest.mark.slow  # two gateways, one after the other
def test_a_logout_outlives_a_restart(mosquitto, gateway_factory):
    first = gateway_factory(mosquitto.url)
    add_user(first.settings.data_dir / "users.json", USER, PASSWORD, "operator")
    cookie, csrf = _sign_in(first)
    kept, _ = _sign_in(first)  # another session of the same user, not logged out
    assert _status(first, cookie) == 200
    with httpx.Client(base_url=first.base, cookies={SESSION_COOKIE: cookie}) as c:
        assert c.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert _status(first, cookie) == 401
    first.stop()
    again = gateway_factory(mosquitto.url)  # the same data folder, a new process state
    assert again.settings.data_dir == first.settings.data_dir
    assert _status(again, cookie) == 401
    assert _status(again, kept) == 200


def test_a_new_password_ends_the_sessions_of_the_old_one(mosquitto, gateway_factory):
    gw = gateway_factory(mosquitto.url)
    users = gw.settings.data_dir / "users.json"
    add_user(users, USER, PASSWORD, "operator")
    stolen, _ = _sign_in(gw)
    assert _status(gw, stolen) == 200
    add_user(users, USER, "a-new-password-2", "operator")  # motcua-gateway user add: the reset
    assert _status(gw, stolen) == 401
    fresh, _ = _sign_in(gw, "a-new-password-2")
    assert _status(gw, fresh) == 200
