"""Authentication and authorisation for the gateway's web UI and API.

- Roles ``viewer < operator < admin``; ``require_role(role)`` is a FastAPI dependency. Beside the
  chain, report readers: ``office_head`` (bound to office codes: reads only their reports) and
  ``province`` (reads all); operators and admins read all reports too (``Principal.report_scope``).
- Browser sessions: a signed cookie (itsdangerous, HttpOnly, SameSite=Lax) carrying the user, a
  session id, a per-session CSRF token and a stamp of the user's password hash (a new password ends
  every session opened with the old one); state-changing requests made with the cookie must send
  the token (header ``X-CSRF-Token`` or form field ``csrf_token``). Bearer-token requests are exempt.
  Logout revokes the session id in ``revoked_sessions.json`` beside ``users.json`` (``gateway.auth_revoked``:
  it outlives a restart and holds in every process sharing the folder).
- API tokens: ``Authorization: Bearer <token>``; the config stores only the token's SHA-256.
- Passwords: argon2id (``gateway.auth_users``, with ``users.json``). Login failures are limited
  per (client, user) and per client, and slowed (never blocked) per user across all clients: see
  ``gateway.login_limit``. The client is the TCP peer, or ``X-Forwarded-For`` as written by a proxy
  listed in ``[auth] trusted_proxies``.
- Settings: the ``[auth]`` table is validated by the pydantic models in ``gateway.auth_config``.
- Users come from ``[auth].users`` in the config and from ``<data_dir>/users.json``, which
  ``add_user`` (the ``motcua-gateway user add`` command) maintains. ``MOTCUA_ADMIN_PASSWORD``
  bootstraps a first admin when none exists.

The app keeps one ``Authenticator`` in ``app.state.auth`` (see ``build_authenticator``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from gateway.auth_config import ROLES, ApiToken, User, parse_auth_table, report_scope
from gateway.auth_revoked import REVOKED_FILE, RevokedSessions
from gateway.auth_secret import SECRET_ENV as SECRET_ENV  # re-exported
from gateway.auth_secret import resolve_secret

# re-exported: the CLI, tests and benches import these from gateway.auth
from gateway.auth_users import USERS_FILE as USERS_FILE
from gateway.auth_users import add_user as add_user
from gateway.auth_users import hash_password as hash_password
from gateway.auth_users import load_users_file, verify_password, verify_unknown_user
from gateway.auth_users import new_api_token as new_api_token
from gateway.auth_users import remove_user as remove_user
from gateway.auth_users import sha256_hex as sha256_hex
from gateway.login_limit import Attempt, LoginLimiter, LoginLimits, Network, client_address
from gateway.login_limit import RateLimited as RateLimited  # re-exported: raised by Authenticator.login

log = logging.getLogger(__name__)

SESSION_COOKIE = "motcua_session"
LOGIN_CSRF_COOKIE = "motcua_login_csrf"
SESSION_KEYS = ("u", "sid", "csrf", "pw")  # user, session id, CSRF token, password stamp
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_PASSWORD_ENV = "MOTCUA_ADMIN_PASSWORD"
ADMIN_USER_ENV = "MOTCUA_ADMIN_USER"

# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The ``[auth]`` table. ``secret_key_source`` says where the key came from."""

    secret_key: str
    users: tuple[User, ...] = ()
    api_tokens: tuple[ApiToken, ...] = ()
    session_ttl_s: int = 8 * 3600
    login_limits: LoginLimits = LoginLimits()
    trusted_proxies: tuple[Network, ...] = ()
    cookie_secure: bool = False
    users_file: Path | None = None
    secret_key_source: str = "config"

    @classmethod
    def from_table(
        cls,
        table: Mapping[str, Any] | None,
        *,
        data_dir: Path | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> AuthSettings:
        """Parse ``[auth]``; raises ``ValueError`` naming the bad key.

        Keys: ``secret_key``, ``session_ttl_s``, ``cookie_secure``,
        ``login_rate_limit = {max_failures, window_s, client_max_failures, user_slow_after,
        slow_interval_s, slow_max_wait_s}``, ``trusted_proxies = ["10.0.0.1", ...]``,
        ``users = [{username, role, password_hash}]``,
        ``api_tokens = [{name, role, token_sha256}]``, ``users_file``.
        Without ``secret_key``: env ``MOTCUA_SECRET_KEY``, else ``<data_dir>/secret_key`` (created
        0600 on first use), else an ephemeral key with a warning (sessions end at restart).
        """
        env = os.environ if env is None else env
        parsed = parse_auth_table(dict(table or {}))
        secret, source = resolve_secret(parsed.secret_key, data_dir, env)
        if parsed.users_file is not None:
            users_file: Path | None = Path(parsed.users_file)
        else:
            users_file = Path(data_dir) / USERS_FILE if data_dir is not None else None
        return cls(secret_key=secret, users=parsed.users, api_tokens=parsed.api_tokens,
                   session_ttl_s=parsed.session_ttl_s, login_limits=parsed.login_rate_limit.limits(),
                   trusted_proxies=parsed.networks(), cookie_secure=parsed.cookie_secure,
                   users_file=users_file, secret_key_source=source)


def _role(value: Any, key: str) -> str:
    if value not in ROLES:
        raise ValueError(f"{key} must be one of {list(ROLES)}, got {value!r}")
    return value


def bootstrap_admin(settings: AuthSettings, env: Mapping[str, str] | None = None) -> User | None:
    """If ``MOTCUA_ADMIN_PASSWORD`` is set and no admin exists, create one in ``users.json``."""
    env = os.environ if env is None else env
    password = env.get(ADMIN_PASSWORD_ENV)
    if not password:
        return None
    file_users = load_users_file(settings.users_file) if settings.users_file else []
    if any(u.role == "admin" for u in (*settings.users, *file_users)):
        return None
    if settings.users_file is None:
        raise ValueError(f"{ADMIN_PASSWORD_ENV} is set but no data dir / auth.users_file to store it in")
    name = env.get(ADMIN_USER_ENV) or "admin"
    user = add_user(settings.users_file, name, password, "admin")
    log.warning("created admin user %r from %s", name, ADMIN_PASSWORD_ENV)
    return user


# --------------------------------------------------------------------------- runtime


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    via: str  # "session" | "token"
    csrf: str = ""
    sid: str = ""
    offices: tuple[str, ...] = ()  # an office_head's offices (looked up on every request)

    def has(self, role: str) -> bool:
        return ROLES[self.role] >= ROLES[role]

    @property
    def report_scope(self) -> frozenset[str] | None:
        """Offices whose reports this principal reads: ``None`` = all, empty = none."""
        return report_scope(self.role, self.offices)

    def reads_reports_of(self, offices: Iterable[str]) -> bool:
        """True when every office in ``offices`` is in scope (a unit's report needs all its offices)."""
        scope = self.report_scope
        wanted = set(offices)
        return scope is None or (bool(wanted) and wanted <= scope)


class Authenticator:
    """Checks passwords, tokens and session cookies; limits login attempts. Thread-safe."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._serializer = URLSafeTimedSerializer(settings.secret_key, salt="motcua-session")
        self._login_serializer = URLSafeTimedSerializer(settings.secret_key, salt="motcua-login-csrf")
        self._lock = threading.Lock()
        self.limiter = LoginLimiter(settings.login_limits, clock)
        users_file = settings.users_file
        self._revoked = RevokedSessions(users_file.parent / REVOKED_FILE if users_file is not None else None)
        self._file_users: list[User] = []
        self._file_stamp: tuple[int, int, int] | None = None  # (inode, mtime ns, size) of users.json
        self.rejected_logins = 0

    # users ---------------------------------------------------------------
    def users(self) -> dict[str, User]:
        """Config users, overridden by ``users.json`` (re-read when it changes)."""
        path = self.settings.users_file
        if path is not None:
            try:  # a rewrite is a new inode (os.replace), so coarse mtimes cannot hide a change
                st = path.stat()
                stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp != self._file_stamp:
                try:
                    self._file_users = load_users_file(path) if stamp is not None else []
                    self._file_stamp = stamp
                except (ValueError, OSError) as e:
                    log.error("ignoring unreadable users file %s: %s", path, e)
        merged = {u.username: u for u in self.settings.users}
        merged.update({u.username: u for u in self._file_users})
        return merged

    # login ---------------------------------------------------------------
    @property
    def rate_limited_logins(self) -> int:
        return self.limiter.limited

    def client_of(self, request: Request) -> str:
        """The address login attempts are counted against (see ``gateway.login_limit``)."""
        return client_address(request.client.host if request.client else None,
                              request.headers.getlist("x-forwarded-for"), self.settings.trusted_proxies)

    def begin_login(self, username: str, client: str) -> Attempt:
        """Admit an attempt or raise ``RateLimited``; wait ``attempt.delay_s`` before ``finish_login``."""
        return self.limiter.begin(username, client)

    def finish_login(self, attempt: Attempt, username: str, password: str) -> Principal | None:
        """Verify the password (slow: argon2). ``None`` on failure (counted)."""
        user = self.users().get(username)
        ok = verify_password(user.password_hash, password) if user else verify_unknown_user(password)
        if not ok or user is None:
            with self._lock:
                self.rejected_logins += 1
            return None
        self.limiter.succeeded(attempt)
        return Principal(user.username, user.role, "session", csrf=secrets.token_urlsafe(24),
                         sid=secrets.token_urlsafe(16), offices=user.offices)

    def login(self, username: str, password: str, ip: str) -> Principal | None:
        """Blocking form of ``begin_login`` + wait + ``finish_login`` (CLI, tests)."""
        attempt = self.begin_login(username, ip)
        if attempt.delay_s > 0:
            time.sleep(attempt.delay_s)
        return self.finish_login(attempt, username, password)

    async def login_async(self, username: str, password: str, client: str) -> Principal | None:
        """For request handlers: the slow-lane wait holds no worker thread; the hash runs in one."""
        attempt = self.begin_login(username, client)
        if attempt.delay_s > 0:
            await asyncio.sleep(attempt.delay_s)
        return await run_in_threadpool(self.finish_login, attempt, username, password)

    # sessions ------------------------------------------------------------
    def session_cookie(self, principal: Principal) -> str:
        user = self.users().get(principal.name)
        return self._serializer.dumps({"u": principal.name, "sid": principal.sid, "csrf": principal.csrf,
                                       "pw": _password_stamp(user)})

    def read_session(self, cookie: str | None) -> Principal | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.settings.session_ttl_s)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in SESSION_KEYS):
            return None
        if data["sid"] in self._revoked:
            return None
        user = self.users().get(data["u"])
        if user is None or not hmac.compare_digest(data["pw"], _password_stamp(user)):
            return None  # removed, or its password changed, since login
        return Principal(user.username, user.role, "session", csrf=data["csrf"], sid=data["sid"],
                         offices=user.offices)

    def revoke(self, principal: Principal) -> None:
        """Log out: the session id is refused until it would have expired anyway."""
        now = self._clock()
        if principal.sid:
            self._revoked.add(principal.sid, now + self.settings.session_ttl_s, now)

    # tokens --------------------------------------------------------------
    def read_bearer(self, header: str | None) -> Principal | None:
        if not header or not header.lower().startswith("bearer "):
            return None
        digest = sha256_hex(header[7:].strip())
        for t in self.settings.api_tokens:
            if hmac.compare_digest(t.token_sha256, digest):
                return Principal(t.name, t.role, "token", offices=t.offices)
        return None

    def principal(self, request: Request) -> Principal | None:
        """Who is asking: a valid bearer token wins, else the session cookie, else ``None``."""
        auth_header = request.headers.get("authorization")
        if auth_header:
            return self.read_bearer(auth_header)
        return self.read_session(request.cookies.get(SESSION_COOKIE))

    # login-form CSRF (before there is a session) ---------------------------
    def login_csrf_pair(self) -> tuple[str, str]:
        """(cookie value, form value) for the login form: a signed random nonce (double submit)."""
        nonce = secrets.token_urlsafe(24)
        return self._login_serializer.dumps(nonce), nonce

    def check_login_csrf(self, cookie: str | None, form_value: str | None) -> bool:
        if not cookie or not form_value:
            return False
        try:
            nonce = self._login_serializer.loads(cookie, max_age=3600)
        except (BadSignature, SignatureExpired):
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, form_value)


def _password_stamp(user: User | None) -> str:
    """A short digest of the user's password hash: the session ends when the password changes."""
    return sha256_hex(user.password_hash)[:16] if user is not None else ""


def build_authenticator(settings: AuthSettings, env: Mapping[str, str] | None = None) -> Authenticator:
    """``bootstrap_admin`` then an ``Authenticator``: what ``create_app`` puts in ``app.state.auth``."""
    bootstrap_admin(settings, env)
    return Authenticator(settings)


def get_authenticator(request: Request) -> Authenticator:
    """``app.state.auth``; if the app has not set one, build it from ``app.state.settings.auth``
    (an ``AuthSettings`` or the raw ``[auth]`` table) or, failing that, from the environment."""
    state = request.app.state
    auth = getattr(state, "auth", None)
    if isinstance(auth, Authenticator):
        return auth
    settings = getattr(state, "settings", None)
    configured = getattr(settings, "auth", None)
    data_dir = getattr(settings, "data_dir", None)
    if isinstance(configured, AuthSettings):
        auth_settings = configured
    else:
        auth_settings = AuthSettings.from_table(configured if isinstance(configured, Mapping) else {},
                                                data_dir=data_dir)
    auth = build_authenticator(auth_settings)
    state.auth = auth
    return auth


# --------------------------------------------------------------------------- FastAPI dependencies


def wants_html(request: Request) -> bool:
    """A page request (redirect to /login) rather than an API call (401 JSON)."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


async def csrf_ok(request: Request, principal: Principal) -> bool:
    """True for safe methods, bearer tokens, or a cookie request carrying the session's CSRF token."""
    if request.method in SAFE_METHODS or principal.via != "session":
        return True
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    return bool(sent) and hmac.compare_digest(sent, principal.csrf)


def require_role(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the caller must hold ``role`` (or higher) and pass CSRF for cookie writes.

    401 (JSON) or 303 to ``/login?next=...`` (pages) when not signed in; 403 when the role is too low
    or the CSRF token is missing/wrong.
    """
    _role(role, "require_role")

    async def dependency(request: Request) -> Principal:
        principal = get_authenticator(request).principal(request)
        if principal is None:
            if wants_html(request) and request.method in SAFE_METHODS:
                from urllib.parse import quote

                target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                raise HTTPException(status_code=303, headers={"Location": f"/login?next={target}"})
            raise HTTPException(status_code=401, detail="authentication required",
                                headers={"WWW-Authenticate": "Bearer"})
        if not principal.has(role):
            raise HTTPException(status_code=403, detail=f"role {role!r} required")
        if not await csrf_ok(request, principal):
            raise HTTPException(status_code=403, detail="missing or invalid CSRF token")
        request.state.principal = principal
        return principal

    return dependency


def optional_principal(request: Request) -> Principal | None:
    """Dependency for public pages that show the signed-in user if there is one."""
    return get_authenticator(request).principal(request)

