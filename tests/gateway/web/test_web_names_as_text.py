"""Office names are text on every page (real gateway, real headless Chromium).

Before, /map gave Leaflet the office name as a string tooltip, which Leaflet inserts as HTML: a name
like ``<img src=x onerror=...>`` became an element on the page (the CSP stopped the handler, but
markup from the registry or an admin's API call must never become page structure).
"""

from __future__ import annotations

from pathlib import Path

from tests.gateway.web.test_web_browser import js_until
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
