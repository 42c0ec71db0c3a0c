"""Web pages (``/map`` public, ``/fleet`` operator), login/logout and the SSE stream.

Everything the pages load is served from ``/web-static/`` (vendored Leaflet, the offline base
layer, our JS/CSS); a Content-Security-Policy of ``'self'`` makes the browser refuse anything else.
The pages read the core's JSON API (``/api/v1/map.geojson``, ``/api/v1/offices/{code}/kpis``,
``/api/v1/devices``...) and refetch when ``/api/v1/stream`` says something changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from gateway.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    RateLimited,
    csrf_ok,
    get_authenticator,
    optional_principal,
)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_PREFIX = "/web-static"
HEARTBEAT_S = 15.0
STREAM_MAX_S = 300.0  # streams end after this; EventSource reconnects (and the page refetches)

templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter()

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _notice(request: Request) -> str:
    """``[web] notice`` (e.g. the demo's compressed time), rendered as text on every page."""
    web = getattr(getattr(request.app.state, "settings", None), "web", None)
    return str(getattr(web, "notice", "") or "")


def _page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    principal = context.pop("principal", None) or optional_principal(request)
    response = templates.TemplateResponse(
        request, name,
        {"principal": principal, "static": STATIC_PREFIX, "notice": _notice(request), **context},
        status_code=status
    )
    response.headers.update(SECURITY_HEADERS)
    return response


# --------------------------------------------------------------------------- pages


@router.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    return RedirectResponse("/map", status_code=307)


@dataclass(frozen=True)
class Thresholds:
    """Colour bands of the map, from the core's ``[kpi]`` settings when the app has them."""

    wait_target_s: float = 1200.0
    wait_warn_s: float = 960.0
    sat_ok: float = 0.9
    sat_warn: float = 0.75

    @property
    def target_vi(self) -> str:
        return _duration(self.wait_target_s, "phút", "giây")

    @property
    def warn_vi(self) -> str:
        return _duration(self.wait_warn_s, "phút", "giây")

    @property
    def target_en(self) -> str:
        return _duration(self.wait_target_s, "min", "s")

    @property
    def warn_en(self) -> str:
        return _duration(self.wait_warn_s, "min", "s")


def _duration(seconds: float, minutes: str, secs: str) -> str:
    """Minutes ("20 phút", "2,5 phút"), or seconds below two minutes ("48 giây": the compressed demo)."""
    if seconds < 120:
        return f"{round(seconds, 1):g} {secs}".replace(".", ",")
    return f"{round(seconds / 60, 1):g} {minutes}".replace(".", ",")


def thresholds(request: Request) -> Thresholds:
    kpi = getattr(getattr(request.app.state, "settings", None), "kpi", None)
    if kpi is None:
        return Thresholds()
    target = float(getattr(kpi, "wait_target_s", 1200.0))
    return Thresholds(target, target * float(getattr(kpi, "warn_share", 0.8)),
                      float(getattr(kpi, "satisfaction_ok", 0.9)),
                      float(getattr(kpi, "satisfaction_warn", 0.75)))


@router.get("/map", include_in_schema=False)
def map_page(request: Request) -> Response:
    return _page(request, "map.html", page="map", t=thresholds(request))


@router.get("/fleet", include_in_schema=False)
def fleet_page(request: Request) -> Response:
    """Operators only: anonymous → the login page; a lower role → a readable 403 page."""
    principal = optional_principal(request)
    if principal is None:
        return RedirectResponse("/login?next=/fleet", status_code=303)
    if not principal.has("operator"):
        return _page(request, "forbidden.html", status=403, page="fleet", principal=principal,
                     need="operator")
    return _page(request, "fleet.html", page="fleet", principal=principal)


def _safe_next(target: str | None) -> str:
    """Only same-site paths (no ``//host`` or scheme) are followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/fleet"
    return target


def _login_form(request: Request, status: int = 200, error: str = "", username: str = "",
                next_url: str = "/fleet") -> Response:
    auth = get_authenticator(request)
    cookie, token = auth.login_csrf_pair()
    response = _page(request, "login.html", status=status, page="login", csrf_token=token, error=error,
                     username=username, next_url=_safe_next(next_url))
    response.set_cookie(LOGIN_CSRF_COOKIE, cookie, max_age=3600, httponly=True, samesite="lax",
                        secure=auth.settings.cookie_secure, path="/login")
    return response


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/fleet") -> Response:  # noqa: A002 - query name
    return _login_form(request, next_url=next)


@router.post("/login", include_in_schema=False)
async def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/fleet"),  # noqa: A002 - form field name
) -> Response:
    auth = get_authenticator(request)
    if not auth.check_login_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return _login_form(request, 403, "Phiên đăng nhập đã hết hạn, vui lòng thử lại. "
                                         "(Invalid or expired form token.)", username, next)
    try:
        principal = await auth.login_async(username.strip(), password, auth.client_of(request))
    except RateLimited as exc:
        minutes = max(1, round(exc.retry_after_s / 60))
        response = _login_form(
            request, 429, f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau khoảng {minutes} phút. "
                          f"(Too many failed logins; retry in {exc.retry_after_s} s.)", username, next)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    if principal is None:
        return _login_form(request, 401, "Sai tên đăng nhập hoặc mật khẩu. (Wrong username or password.)",
                           username, next)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, auth.session_cookie(principal), max_age=auth.settings.session_ttl_s,
                        httponly=True, samesite="lax", secure=auth.settings.cookie_secure, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    auth = get_authenticator(request)
    principal = auth.principal(request)
    if principal is not None and principal.via == "session":
        if not await csrf_ok(request, principal):
            raise HTTPException(status_code=403, detail="missing or invalid CSRF token")
        auth.revoke(principal)
    response = RedirectResponse("/map", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --------------------------------------------------------------------------- static files


@router.get(STATIC_PREFIX + "/{path:path}", include_in_schema=False)
def static_file(path: str) -> FileResponse:
    target = (STATIC / path).resolve()
    if not target.is_file() or not target.is_relative_to(STATIC):
        raise HTTPException(status_code=404, detail="not found")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix == ".json":
        media_type = "application/geo+json" if "basemap" in target.parts else "application/json"
    return FileResponse(target, media_type=media_type,
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


# --------------------------------------------------------------------------- live updates (SSE)


def _visible(message: dict[str, Any], principal: Principal | None) -> bool:
    """Office updates are public; device updates only for operators."""
    if message.get("kind") == "office":
        return True
    return principal is not None and principal.has("operator")


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _stream(request: Request, principal: Principal | None, heartbeat_s: float) -> AsyncIterator[bytes]:
    hub = getattr(request.app.state, "live", None)
    yield b"retry: 3000\n\n"
    yield _sse("hello", {"live": hub is not None, "operator": bool(principal and principal.has("operator"))})
    if hub is None:  # no hub wired: keep the connection alive so the page does not hammer us
        while not await request.is_disconnected():
            await asyncio.sleep(heartbeat_s)
            yield b": ping\n\n"
        return
    local: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=512)

    async def pump() -> None:
        async for message in hub.subscribe():
            if local.full():
                local.get_nowait()
            local.put_nowait(message)

    task = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    end = loop.time() + STREAM_MAX_S
    try:
        while loop.time() < end:
            try:
                message = await asyncio.wait_for(local.get(), timeout=heartbeat_s)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": ping\n\n"
                continue
            if _visible(message, principal):
                yield _sse(str(message.get("kind", "update")), message)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@router.get("/api/v1/stream", tags=["live"], summary="Server-sent events: office and device changes")
def stream(request: Request, heartbeat_s: float = HEARTBEAT_S) -> StreamingResponse:
    """``event: office`` ``{"kind":"office","office_code":...}`` for everyone; ``event: device`` for
    operators. Messages are hints to refetch. A ``: ping`` comment every ``heartbeat_s`` seconds."""
    heartbeat_s = min(max(heartbeat_s, 1.0), 60.0)
    principal = optional_principal(request)
    return StreamingResponse(
        _stream(request, principal, heartbeat_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
