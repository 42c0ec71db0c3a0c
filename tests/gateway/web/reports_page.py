"""The /reports page in Chromium: sign in, and wait until the report the form asks for is shown.

The page marks `.reports[data-loaded]` with "kind/code/period" once a report has rendered, or "error"
with the reason in #report-status; only the latest request renders (reports.js aborts the others).
"""

from __future__ import annotations

import time
from typing import Any


def login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(base + "/reports")
    assert "/login" in page.url  # signed out: the login page, then back to /reports
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(base + "/reports")


def wait_loaded(page: Any, key: str, timeout_s: float = 90) -> None:
    """Poll the page's marker through CDP with Playwright waits (no 'unsafe-eval' under our CSP, and
    routed requests keep flowing: PLATFORM-NOTES)."""
    deadline = time.monotonic() + timeout_s
    while (got := page.evaluate("() => document.querySelector('.reports').dataset.loaded")) != key:
        assert got != "error", page.locator("#report-status").inner_text()
        assert time.monotonic() < deadline, f"report {key} not shown (marker {got!r})"
        page.wait_for_timeout(100)


def show_office_year(page: Any, office: str, year: int) -> None:
    """Choose an office's year on the form and wait until that report is shown."""
    page.select_option("#scope", f"office/{office}")
    page.select_option("#period", "year")
    page.select_option("#year", str(year))
    wait_loaded(page, f"office/{office}/{year}")
