"""Fixtures for the web UI tests: Debian's Chromium through Playwright, and a gateway with an operator."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import hash_password

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATOR = ("op", "operator-pass-1")
VIEWER = ("viewer", "viewer-pass-1")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/system-packages.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def auth_section() -> dict[str, Any]:
    return {
        "users": [
            {"username": OPERATOR[0], "role": "operator", "password_hash": hash_password(OPERATOR[1])},
            {"username": VIEWER[0], "role": "viewer", "password_hash": hash_password(VIEWER[1])},
        ]
    }


@dataclass
class Recorder:
    """Every request a page makes, and console errors; non-local requests are aborted and kept."""

    origin: str
    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, context: Any, page: Any) -> None:
        def route(r: Any) -> None:
            url = r.request.url
            self.requests.append(url)
            if url.startswith(self.origin + "/") or url == self.origin:
                r.continue_()
            else:
                self.external.append(url)
                r.abort()

        context.route("**/*", route)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


@pytest.fixture
def page_factory(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(origin: str, **context_args: Any) -> tuple[Any, Recorder]:
        ctx = browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", **context_args)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        rec = Recorder(origin)
        rec.attach(ctx, page)
        return page, rec

    yield make
    for ctx in contexts:  # close pages (and their SSE connections) before the gateway stops
        ctx.close()
