"""The report roles: ``office_head`` bound to office codes, ``province`` reading all (gateway.auth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth import Authenticator, AuthSettings, Principal, add_user, load_users_file, new_api_token

SECRET = "s" * 40


def _settings(users: list[dict], tokens: list[dict] | None = None) -> AuthSettings:
    return AuthSettings.from_table({"secret_key": SECRET, "users": users, "api_tokens": tokens or []})


def test_office_head_needs_offices_and_others_must_not_have_them() -> None:
    h = "$argon2id$v=19$m=65536,t=3,p=4$x$y"
    with pytest.raises(ValueError, match=r"\[auth\] users\.0.*office_head.*at least one office"):
        _settings([{"username": "a", "role": "office_head", "password_hash": h}])
    with pytest.raises(ValueError, match=r"\[auth\] users\.0.*only for role 'office_head'"):
        _settings([{"username": "a", "role": "province", "password_hash": h, "offices": ["03390"]}])
    with pytest.raises(ValueError, match=r"\[auth\] users\.0\.offices\.0"):
        _settings([{"username": "a", "role": "office_head", "password_hash": h, "offices": ["../x"]}])
    with pytest.raises(ValueError, match=r"\[auth\] users\.0\.role"):
        _settings([{"username": "a", "role": "chief", "password_hash": h}])
    ok = _settings([{"username": "a", "role": "office_head", "password_hash": h,
                     "offices": ["03390", "03405"]}])
    assert ok.users[0].offices == ("03390", "03405")


@pytest.mark.parametrize(
    ("role", "offices", "asked", "allowed"),
    [
        ("office_head", ("03390",), ["03390"], True),
        ("office_head", ("03390",), ["03405"], False),
        ("office_head", ("03390",), ["03390", "03405"], False),  # a unit with an office not theirs
        ("office_head", ("03390", "03405"), ["03390", "03405"], True),
        ("office_head", ("03390",), [], False),  # an empty unit is nobody's
        ("province", (), ["03390", "03405"], True),
        ("operator", (), ["03405"], True),
        ("admin", (), ["03405"], True),
        ("viewer", (), ["03390"], False),
    ],
)
def test_report_scope(role: str, offices: tuple[str, ...], asked: list[str], allowed: bool) -> None:
    assert Principal("u", role, "session", offices=offices).reads_reports_of(asked) is allowed


def test_users_file_keeps_offices_and_login_carries_them(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_user(path, "chief", "chief-pass-1", "office_head", ("03390",))
    add_user(path, "prov", "prov-pass-1", "province")
    users = {u.username: u for u in load_users_file(path)}
    assert users["chief"].offices == ("03390",) and users["prov"].offices == ()
    with pytest.raises(ValueError, match="office_head"):
        add_user(path, "x", "long-enough-1", "office_head")
    auth = Authenticator(AuthSettings.from_table({"secret_key": SECRET, "users_file": str(path)}))
    p = auth.login("chief", "chief-pass-1", "127.0.0.1")
    assert p is not None and p.offices == ("03390",)
    again = auth.read_session(auth.session_cookie(p))
    assert again is not None and again.reads_reports_of(["03390"]) and not again.reads_reports_of(["03405"])
    # the binding is read on every request: moving the head to another office applies at once
    add_user(path, "chief", "chief-pass-1", "office_head", ("03405",))
    moved = auth.read_session(auth.session_cookie(p))
    assert moved is not None and moved.offices == ("03405",)


def test_bearer_token_for_an_office_head() -> None:
    token, digest = new_api_token()
    settings = _settings([], [{"name": "t", "role": "office_head", "token_sha256": digest,
                               "offices": ["03424"]}])
    p = Authenticator(settings).read_bearer(f"Bearer {token}")
    assert p is not None and p.role == "office_head" and p.report_scope == frozenset({"03424"})
