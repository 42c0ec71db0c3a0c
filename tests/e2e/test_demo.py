"""``make demo`` end to end: embedded broker, gateway, simulated kiosks (Bình Lư with an entrance kiosk and
shared lines), simulated citizens.

Runs ``python -m demo.run`` as the Makefile does (on free ports, fresh data; compressed time ×20 as
`make demo`) and checks that the two demo offices show live figures through the
public API, that Tả Lèng's waits grow until it turns amber and then red while Bình Lư stays green,
and what a newcomer sees in headless Chromium: the map with both colours, labels that do not hide each
other, the 7-day forecast chart, and a counter display that fits a phone; no request leaves the
gateway's origin; then that Ctrl+C-style shutdown stops every process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psutil

from tests.gateway.web.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.gateway.web.layout import PHONE, horizontal_overflow, label_overlaps
from tests.support.mosquitto import free_port
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
OFFICES = {"03390", "03405"}
DEVICES = {"03390": 4, "03405": 3}  # Bình Lư: three counters on shared lines and the entrance kiosk
# as `make demo`: wait target 1200 s / 20 = 60 s, amber from 48 s (at x40 the 6-s amber band was
# crossed between two polls on a loaded machine)
TIME_SCALE = 20


def _poll(fn, what: str, timeout: float):
    return wait_for(fn, timeout, what, interval=1, ignore=(httpx.HTTPError, ValueError, KeyError))


def _watch_until_red(api: httpx.Client, demo: subprocess.Popen, tmp_path: Path) -> dict[str, list[str]]:
    """Poll the map's classes until Tả Lèng is red: it must pass through amber, and Bình Lư stay green."""
    seen: dict[str, list[str]] = {"03390": [], "03405": []}

    def step():
        if demo.poll() is not None:
            raise AssertionError(f"demo exited: {(tmp_path / 'demo.out').read_text()[-3000:]}")
        offices = {o["code"]: o for o in api.get("/api/v1/offices").json()}
        for code, classes in seen.items():
            cls = offices[code]["wait_class"]
            if cls != "none" and (not classes or classes[-1] != cls):
                classes.append(cls)
        return seen["03405"][-1:] == ["bad"]

    _poll(step, "Tả Lèng red on compressed time", timeout=600)
    assert seen["03405"][:1] == ["ok"] and "warn" in seen["03405"], seen
    assert seen["03390"] == ["ok"], seen
    return seen


def _entrance_url(out: Path) -> str:
    for line in out.read_text(encoding="utf-8").splitlines():
        if line.startswith("• Entrance kiosk k03390-cua"):
            return line.split(": ", 1)[1].split("/ ", 1)[0]
    raise AssertionError("no entrance kiosk printed")


def _display_url(out: Path, device_id: str) -> str:
    for line in out.read_text(encoding="utf-8").splitlines():
        if f"Kiosk {device_id}: counter display " in line:
            return line.rsplit(" ", 1)[1]
    raise AssertionError(f"no counter display printed for {device_id}")


def test_demo_shows_offices_live_on_the_map(tmp_path: Path, artifacts_dir: Path) -> None:
    port = free_port()
    out = (tmp_path / "demo.out").open("wb")
    started = time.monotonic()
    demo = subprocess.Popen(
        [sys.executable, "-m", "demo.run", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--fresh", "--quiet", "--seed", "7", "--time-scale", str(TIME_SCALE)],
        cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        def offices_live():
            if demo.poll() is not None:
                raise AssertionError(f"demo exited: {(tmp_path / 'demo.out').read_text()[-3000:]}")
            offices = {o["code"]: o for o in api.get("/api/v1/offices").json()}
            ok = all(offices[c]["devices_online"] == DEVICES[c] and offices[c]["kpi_today"]["visits"] > 0
                     and offices[c]["kpi_today"]["avg_wait_s"] is not None for c in OFFICES)
            return offices if ok else None

        offices = _poll(offices_live, "both demo offices online with visits and waits", timeout=180)
        print(f"demo live on the API after {time.monotonic() - started:.1f} s")
        for code in OFFICES:
            kpi = offices[code]["kpi_today"]
            assert 0 <= kpi["avg_wait_s"] < 3600
        # demo.history published past working days through the broker: the panel's history has them
        day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() - timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        past = api.get(f"/api/v1/offices/03405/kpis?day={day}").json()
        assert past["kpi"]["visits"] > 0 and past["kpi"]["rated"] > 0, past["kpi"]
        assert past["forecast"]["error"]["value"] is not None
        # Bình Lư's visits come from its shared lines: the entrance kiosk's hall display names the counter
        hall = _entrance_url(tmp_path / "demo.out")
        calls = _poll(lambda: httpx.get(f"{hall}/api/status", timeout=10).json()["line"]["calls"],
                      "a call on Bình Lư's shared lines", timeout=120)
        assert {c["counter"] for c in calls} <= {1, 2, 3} and calls[0]["label"][-4] in "123", calls
        # ... and the gateway counts those visits for the counters that called them (serving_counter),
        # never for the entrance's line number (4), which keeps only the tickets not called yet
        def served_at_counters():
            by = {c["counter"]: c["kpi"] for c in api.get("/api/v1/offices/03390/kpis").json()["counters"]}
            return by if sum(by[c]["served"] for c in (1, 2, 3) if c in by) > 0 else None

        by_counter = _poll(served_at_counters, "Bình Lư's shared-line visits served at counters 1-3",
                           timeout=120)
        line = by_counter.get(4, {})
        assert line.get("served", 0) == 0 and line.get("rated", 0) == 0, by_counter
        geo = api.get("/api/v1/map.geojson").json()
        assert {f["properties"]["code"] for f in geo["features"]} >= OFFICES

        classes = _watch_until_red(api, demo, tmp_path)
        print(f"wait classes seen: {classes}")

        from playwright.sync_api import sync_playwright

        base = f"http://127.0.0.1:{port}"
        external: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})

            def route(r) -> None:
                if r.request.url.startswith(base):
                    r.continue_()
                else:
                    external.append(r.request.url)
                    r.abort()

            ctx.route("**/*", route)
            page = ctx.new_page()
            page.goto(base + "/map")
            for code in OFFICES:
                page.wait_for_selector(f'#office-list button[data-office="{code}"]:not([data-cls="none"])',
                                       timeout=60_000)
            page.wait_for_selector('path[data-office="03405"][data-cls="bad"]', timeout=60_000)
            assert page.locator('path[data-office="03390"]').get_attribute("data-cls") == "ok"
            notice = page.locator("p.notice").inner_text()
            assert f"×{TIME_SCALE}" in notice and "60 giây" in notice, notice
            overlaps, shown = label_overlaps(page)
            assert shown >= 2 and overlaps == [], overlaps
            assert page.locator('.office-label[data-office="03405"]').is_visible()  # the red one is named
            page.screenshot(path=str(artifacts_dir / "demo-map.png"), full_page=True)
            page.locator('#office-list button[data-office="03405"]').click()
            page.wait_for_selector('#forecast-chart .fc-day', timeout=60_000)
            days = page.locator("#forecast-chart .fc-day").all()
            totals = [float(g.get_attribute("data-total")) for g in days]
            assert len(totals) == 7 and sum(totals) > 0, totals  # from the 20 days of demo history
            assert "Dự báo lượt khách 7 ngày tới" in page.locator("#forecast-title").inner_text()
            page.locator("#forecast-chart").scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts_dir / "demo-map-forecast.png"))

            phone = browser.new_context(**PHONE).new_page()
            display = _display_url(tmp_path / "demo.out", "k03405-q1")
            phone.goto(display)
            phone.wait_for_function("document.getElementById('serving').textContent.trim() !== '––––'",
                                    timeout=60_000)
            assert phone.locator("#office").inner_text() == "Bộ phận Một cửa xã Tả Lèng"  # a name, not 03405
            width, inner = horizontal_overflow(phone)
            phone.screenshot(path=str(artifacts_dir / "demo-display-phone.png"), full_page=True)
            assert width <= inner, f"counter display {width} px wide in a {inner} px phone"
            browser.close()
        assert external == [], f"the map made external requests: {external}"
    finally:
        children = psutil.Process(demo.pid).children(recursive=True) if demo.poll() is None else []
        demo.send_signal(signal.SIGTERM)
        rc = demo.wait(60)
        out.close()
        log = (tmp_path / "demo.out").read_text()
    assert rc == 0, log[-3000:]
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"demo left processes running: {alive}"
    assert "events seen:" in log and "ticket.issued=" in log, log[-2000:]
