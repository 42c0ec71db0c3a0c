"""``/docs`` and ``/redoc`` work with no internet: their assets come from the gateway (Chromium).

Before, FastAPI's pages loaded Swagger UI and ReDoc from a CDN: with no internet (an office LAN, this
test's browser, which aborts every request leaving the gateway) ``/docs`` was a blank page.
"""

from __future__ import annotations

from tests.gateway.web.test_web_browser import js_until


def test_docs_render_from_the_gateway_alone(mosquitto, gateway_factory, page_factory, artifacts_dir) -> None:
    gw = gateway_factory(mosquitto.url)
    page, rec = page_factory(gw.base, viewport={"width": 1280, "height": 900})
    page.goto(gw.base + "/docs")
    js_until(page, "document.querySelectorAll('.opblock').length > 10", "Swagger UI operation list")
    text = page.locator(".swagger-ui").inner_text()
    assert "/api/v1/offices" in text and "MotCua Edge gateway" in text
    page.screenshot(path=str(artifacts_dir / "web-docs-offline.png"))

    page.goto(gw.base + "/redoc")
    js_until(page, "document.querySelectorAll('[data-section-id]').length > 10", "ReDoc sections")
    assert rec.external == [], rec.external
    assert not [e for e in rec.errors if "Failed to load" in e or "net::" in e], rec.errors
