"""Passwords, API token digests and ``users.json`` (the users the CLI manages).

- Passwords: argon2id (argon2-cffi); at least 8 characters. An unknown user is checked against a
  dummy hash so that it costs the same time as a wrong password.
- ``users.json`` is written whole to a temporary file (mode 0600) and renamed over the old one, so
  a reader never sees half a file; ``Authenticator.users`` notices the new inode.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.auth_config import ROLES, User, parse_users

USERS_FILE = "users.json"

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that unknown users cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """argon2id hash of ``password`` (for the config file or ``users.json``)."""
    if not isinstance(password, str) or len(password) < 8:
        raise ValueError("password must be at least 8 characters")
    return _hasher.hash(password)


def verify_unknown_user(password: str) -> bool:
    """Spend the time of a real check, then fail (the user does not exist)."""
    verify_password(_DUMMY_HASH, password)
    return False


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_api_token() -> tuple[str, str]:
    """A fresh API token and the SHA-256 hex to put in ``[[auth.api_tokens]]``."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_users_file(path: Path) -> list[User]:
    if not path.exists():
        return []
    raw = json.loads(path.read_text() or "[]")
    return parse_users(raw, str(path))


def _write_users_file(path: Path, users: list[User]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([{"username": u.username, "role": u.role, "password_hash": u.password_hash,
                    **({"offices": list(u.offices)} if u.offices else {})} for u in users], f, indent=2)
    os.replace(tmp, path)


def add_user(path: Path, username: str, password: str, role: str = "operator",
             offices: tuple[str, ...] = ()) -> User:
    """Add or replace ``username`` in ``users.json`` (for ``motcua-gateway user add``); an
    ``office_head`` needs its ``offices``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {list(ROLES)}, got {role!r}")
    entry = {"username": username, "role": role, "password_hash": hash_password(password),
             "offices": tuple(offices)}
    user = parse_users([entry], "user")[0]
    users = [u for u in load_users_file(path) if u.username != username] + [user]
    _write_users_file(path, users)
    return user


def remove_user(path: Path, username: str) -> bool:
    users = load_users_file(path)
    kept = [u for u in users if u.username != username]
    _write_users_file(path, kept)
    return len(kept) != len(users)
