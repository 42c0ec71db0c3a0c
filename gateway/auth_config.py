"""The ``[auth]`` table as pydantic models (one typed config layer with ``gateway.config``).

Every table refuses unknown keys and wrong types (``extra="forbid"``, strict); bounds are on the
fields. ``parse_auth_table`` and ``parse_users`` raise ``contract.config_errors.ConfigError`` (a
``ValueError``) naming the key, e.g. ``config error: [auth] users.0.role: must be viewer, operator or
admin, got 'root'``; secrets are never echoed.
The secret key is resolved (config, env, file, ephemeral) by ``gateway.auth``, not here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from contract.config_errors import from_validation
from gateway.login_limit import LoginLimits, Network, parse_networks

MIN_SECRET_LEN = 32
ROLES: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}  # rank: a role includes lower ones
Role = Literal["viewer", "operator", "admin"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class User(_Table):
    username: str = Field(min_length=1, max_length=64, pattern=r"\S", description="login name")
    role: Role
    password_hash: str = Field(pattern=r"^\$argon2",
                               description="argon2 hash (use `motcua-gateway user hash`)")


class ApiToken(_Table):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the token, lower-case hex")


class LoginLimitsTable(_Table):
    """``login_rate_limit``: see ``gateway.login_limit`` for what each one does."""

    max_failures: int = Field(5, ge=1, le=1000, description="failures per (client, user) that block")
    window_s: int = Field(300, ge=1, le=86_400, description="how long a failure counts")
    client_max_failures: int = Field(20, ge=1, le=100_000, description="failures per client that block")
    user_slow_after: int = Field(10, ge=1, le=100_000,
                                 description="failures for one user (all clients) that start the slow lane")
    slow_interval_s: float = Field(2.0, ge=0, le=3600, description="slow lane: one attempt per this")
    slow_max_wait_s: float = Field(30.0, ge=0, le=3600, description="longer slow-lane waits get 429")

    def limits(self) -> LoginLimits:
        return LoginLimits(**self.model_dump())


class AuthTable(_Table):
    secret_key: str | None = Field(None, min_length=MIN_SECRET_LEN)
    users: tuple[User, ...] = ()
    api_tokens: tuple[ApiToken, ...] = ()
    session_ttl_s: int = Field(8 * 3600, ge=1, le=365 * 86_400)
    login_rate_limit: LoginLimitsTable = Field(default_factory=LoginLimitsTable)
    cookie_secure: bool = Field(False, description="true behind HTTPS")
    users_file: str | None = Field(None, min_length=1)
    trusted_proxies: tuple[str, ...] = Field((), description="proxies whose X-Forwarded-For is believed")

    @field_validator("users")
    @classmethod
    def _unique_names(cls, users: tuple[User, ...]) -> tuple[User, ...]:
        names = [u.username for u in users]
        if len(set(names)) != len(names):
            raise ValueError("duplicate username")
        return users

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(values)
        return values

    def networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)


def _as_tuples(table: dict[str, Any]) -> dict[str, Any]:
    """TOML and JSON give lists; strict tuples want tuples (a list stays a clear type error elsewhere)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


def parse_auth_table(table: dict[str, Any]) -> AuthTable:
    try:
        return AuthTable.model_validate(_as_tuples(table))
    except ValidationError as exc:
        raise from_validation(exc, "auth", AuthTable) from None


_USERS = TypeAdapter(tuple[User, ...])


def parse_users(raw: Any, where: str) -> list[User]:
    """A ``users.json`` list; errors name ``[where] i.key``."""
    try:
        return list(_USERS.validate_python(tuple(raw) if isinstance(raw, list) else raw))
    except ValidationError as exc:
        raise from_validation(exc, where) from None
