"""ASGI middleware: request bodies are size-limited before anything reads them.

Invariants:

- A request whose ``Content-Length`` is above the limit is answered ``413`` at once; the app is not
  called and the body is never read (a 200 MB anonymous POST used to grow the gateway by ~570 MB
  before its ``401``, because FastAPI reads a JSON body before it runs the auth dependency).
- A body without ``Content-Length`` (chunked) is counted while it streams; the first chunk that
  passes the limit ends the request with ``413`` (``BodyTooLarge`` is an ``HTTPException``, so
  FastAPI's own body parsing re-raises it unchanged). At most ``limit`` bytes plus one chunk are
  ever held.
- A malformed ``Content-Length`` is a ``400``, not a guess.
- Limits are per exact path: the update-bundle upload (``POST /api/v1/updates``, whose handler
  checks the admin role before it reads the body) gets ``[web] max_upload_bytes``; everything else
  gets ``[web] max_body_bytes``. Exact, not prefix, so that no JSON endpoint below it (read by
  FastAPI before the auth dependency runs) inherits the large limit.

Refusals are counted (``refused``) so an operator can see them in the ingest stats.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """The body passed its limit while streaming."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes (``per_path`` overrides it for exact paths)."""

    def __init__(self, app: ASGIApp, limit: int, per_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.per_path = dict(per_path or {})
        self.refused = 0

    def limit_for(self, path: str) -> int:
        return self.per_path.get(path.rstrip("/") or "/", self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared == -1:
            await _answer(send, 400, "invalid Content-Length header")
            return
        if declared is not None and declared > limit:
            self.refused += 1
            await _answer(send, 413, f"request body larger than {limit} bytes")
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if seen > limit:  # the rest of the body is not wanted: the server closes, not drains
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:  # raised where no HTTPException handler sits (e.g. a bare read)
            self.refused += 1
            if started:
                raise
            await _answer(send, 413, exc.detail)
            return
        if seen > limit:  # handled inside the app as a 413 response
            self.refused += 1


def _content_length(scope: Scope) -> int | None:
    """The declared length; ``None`` if absent, ``-1`` if malformed or repeated with other values."""
    values = {v for k, v in scope.get("headers", []) if k.lower() == b"content-length"}
    if not values:
        return None
    if len(values) > 1:
        return -1
    raw = values.pop().strip()
    if not raw.isdigit() or len(raw) > 18:
        return -1
    return int(raw)


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
