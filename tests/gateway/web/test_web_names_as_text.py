"""Office names and device-reported strings are text on every page (real gateway, headless Chromium).

Before, /map gave Leaflet the office name as a string tooltip, which Leaflet inserts as HTML: a name
like ``<img src=x onerror=...>`` became an element on the page (the CSP stopped the handler, but
markup from the registry or an admin's API call must never become page structure).
"""

from __future__ import annotations

from pathlib import Path

from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.gateway.web.conftest import OPERATOR, auth_section
from tests.gateway.web.test_web_browser import js_until, login
from tests.support.wait import wait_for

HOSTILE = '<img src=x onerror="window.__xss=1"><b id=injected>X</b>'

ELEMENTS_FROM_NAMES = """() => ({
  injected: document.querySelectorAll('#injected, img[src="x"]').length,
  xss: window.__xss === undefined ? null : window.__xss,
  tooltips: [...document.querySelectorAll('.leaflet-tooltip')].map((t) => t.textContent),
  list: [...document.querySelectorAll('#office-list button')].map((b) => b.textContent),
  title: document.querySelector('#panel-title').textContent,
})"""


def test_office_name_shows_as_text_on_the_map(
    mosquitto, gateway_factory, page_factory, artifacts_dir: Path
) -> None:
    gw = gateway_factory(mosquitto.url)
    r = gw.admin.put("/api/v1/offices/03390", json={"name": HOSTILE})
    assert r.status_code == 200, r.text
    assert gw.public.get("/api/v1/offices/03390").json()["name"] == HOSTILE

    page, rec = page_factory(gw.base, viewport={"width": 1280, "height": 860})
    page.goto(gw.base + "/map")
    js_until(page, "document.body.dataset.officesLoaded === '6'", "offices listed")
    js_until(page, "document.querySelectorAll('.leaflet-tooltip').length === 6", "labels drawn")
    page.locator('#office-list button[data-office="03390"]').click()
    page.wait_for_selector('#office-panel[data-office="03390"]')
    page.screenshot(path=str(artifacts_dir / "web-map-hostile-name.png"))

    seen = page.evaluate(ELEMENTS_FROM_NAMES)
    assert seen["injected"] == 0, seen
    assert seen["xss"] is None
    assert HOSTILE in seen["tooltips"], seen["tooltips"]
    assert any(HOSTILE in text for text in seen["list"])
    assert seen["title"] == HOSTILE
    assert not any(u.endswith("/x") for u in rec.requests), "the name's <img> was loaded"
    wait_for(lambda: not rec.external, what="no external request")


def test_device_reported_strings_show_as_text_on_the_fleet(
    mosquitto, gateway_factory, page_factory, artifacts_dir: Path
) -> None:
    """A kiosk (or a stolen certificate) controls its health strings: version, model names, error."""
    gw = gateway_factory(mosquitto.url, auth=auth_section())
    fac = EventFactory("k03390-q1", "03390")
    pub = Publisher(mosquitto.port)
    pub.status(fac.status())
    pub.health(fac.health(sw_version=HOSTILE, model_versions={HOSTILE: HOSTILE}, last_error=HOSTILE))
    pub.flush()
    wait_for(lambda: any(d.get("last_error") == HOSTILE for d in gw.ops.get("/api/v1/devices").json()),
             what="health stored")

    page, rec = page_factory(gw.base, viewport={"width": 1400, "height": 900})
    page.goto(gw.base + "/fleet")
    login(page, gw.base, *OPERATOR)
    page.wait_for_url(gw.base + "/fleet")
    row = page.locator('tr[data-device="k03390-q1"]')
    row.wait_for()
    wait_for(lambda: row.inner_text().count(HOSTILE) >= 3, what="hostile strings shown as text")
    # in the page, in one step: the table re-renders on every live update, and a located row can be
    # replaced between Playwright's lookup and its scroll ("not attached to the DOM")
    page.evaluate("document.querySelector('tr[data-device=\"k03390-q1\"]').scrollIntoView()")
    page.screenshot(path=str(artifacts_dir / "web-fleet-hostile-strings.png"))
    assert page.evaluate("document.querySelectorAll('#injected, img[src=\"x\"]').length") == 0
    assert page.evaluate("window.__xss === undefined")
    assert not rec.external
