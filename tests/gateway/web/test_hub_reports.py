"""A province hub's /reports shows the offices of its commune gateways from their feed records.

Two commune gateways (A: office 03390, B: office 03405), each with its own Mosquitto and the upward
feed on; a hub that pulls both feeds (as tests/gateway/feed/ do). The hub has no visit of its own: its
report of each office equals what the test sent (tests/gateway/feed/scenario.py's oracle) and the
commune's own period API; the unit report of B's unit too; the page in Chromium shows it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import hash_password
from tests.gateway.conftest import RunningGateway, gateway_settings, wait_for
from tests.gateway.feed.scenario import TZ, Office, expected, past_hours
from tests.gateway.feed.test_feed_hub import FEED_TOKEN, _feed, _matches, _send
from tests.gateway.kiosk_sim import EventFactory
from tests.gateway.web.reports_page import login, show_office_year
from tests.support.mosquitto import Mosquitto

PROVINCE = ("so-noi-vu", "province-pass-12")


def _oracle(office: Office) -> dict[str, Any]:
    exp = expected(office).values()
    ratings = [sum(e["ratings"][i] for e in exp) for i in range(5)]
    waits = sum(e["wait_count"] for e in exp)
    return {"visits": sum(e["visits"] for e in exp), "served": sum(e["served"] for e in exp),
            "no_shows": sum(e["no_shows"] for e in exp), "rated": sum(ratings), "not_satisfied": ratings[0],
            "avg_wait_s": sum(e["wait_sum_s"] for e in exp) / waits if waits else None}


def _year(office: Office) -> int:
    years = {v.issued.astimezone(TZ).year for v in office.visits}
    if len(years) != 1:
        pytest.skip("the test's hours straddle a new year")  # one minute a year
    return years.pop()


def _check(report: dict[str, Any], want: dict[str, Any], commune_totals: dict[str, Any]) -> None:
    t = report["totals"]
    assert report["source"] == "hub"
    for key in ("visits", "served", "no_shows", "rated", "not_satisfied"):
        assert t[key] == want[key], key
    assert t["avg_wait_s"] == pytest.approx(want["avg_wait_s"])
    assert sum(p["visits"] for p in report["series"]) == t["visits"]
    # the commune's own figures, computed there from its rollups
    assert (t["visits"], t["served"], t["rated"]) == (commune_totals["visits"], commune_totals["served"],
                                                      commune_totals["n_ratings"])
    assert t["satisfaction_rate"] == pytest.approx(commune_totals["satisfaction"])
    assert report["counters"] == [] and report["officers"] == []  # not in the feed


def test_hub_reports_show_the_communes_offices(tmp_path: Path, page_factory, artifacts_dir) -> None:
    rng = random.Random(3)
    users = [{"username": PROVINCE[0], "role": "province", "password_hash": hash_password(PROVINCE[1])}]
    with Mosquitto() as ka, Mosquitto() as kb, Mosquitto() as kh:
        a = RunningGateway(gateway_settings(tmp_path / "a", ka.url, feed=_feed("lc-a"))).start()
        b = RunningGateway(gateway_settings(tmp_path / "b", kb.url, feed=_feed("lc-b"))).start()
        hub = RunningGateway(gateway_settings(tmp_path / "hub", kh.url, auth={"users": users}, hub={
            "enabled": True, "sources": ["lc-a", "lc-b"], "pull_interval_s": 0.3,
            "pull": [{"url": a.base, "source": "lc-a", "token": FEED_TOKEN},
                     {"url": b.base, "source": "lc-b", "token": FEED_TOKEN}]})).start()
        try:
            offices = {"03390": (Office("03390", [EventFactory("k03390-q1", "03390", 1),
                                                  EventFactory("k03390-q2", "03390", 2)]), a, ka),
                       "03405": (Office("03405", [EventFactory("k03405-q1", "03405", 1)]), b, kb)}
            for office, _gw, broker in offices.values():
                for h in past_hours(4)[:3]:
                    office.add_hour(h, rng)
                _send(broker.port, [e for v in office.visits for e in (*v.issue(), *v.finish())])
            for office, _gw, _b in offices.values():
                wait_for(lambda o=office: _matches(hub, o), timeout=120, what=f"hub holds {office.code}")
            for code, (office, commune, _b) in offices.items():
                year = _year(office)
                q = {"period": "year", "year": year}
                report = hub.ops.get(f"/api/v1/reports/office/{code}", params=q).json()
                own = commune.ops.get(f"/api/v1/offices/{code}/period",
                                      params={"start": f"{year}-01-01", "end": f"{year}-12-31"}).json()
                _check(report, _oracle(office), own["totals"])
                assert report["hub_offices"] == [code]
                pdf = hub.ops.get(f"/api/v1/reports/office/{code}/pdf", params=q)
                assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
                assert hub.ops.get(f"/api/v1/reports/office/{code}/xlsx", params=q).status_code == 200
            unit = hub.ops.get("/api/v1/reports/unit/03405", params=q).json()
            assert unit["source"] == "hub"
            assert unit["totals"]["visits"] == _oracle(offices["03405"][0])["visits"]
            features = hub.ops.get("/api/v1/hub/map.geojson").json()["features"]
            heard = {f["properties"]["office_code"] for f in features}
            assert heard == {"03390", "03405"}
            _browser(hub, page_factory, artifacts_dir, _year(offices["03390"][0]),
                     _oracle(offices["03390"][0])["visits"])
        finally:
            hub.stop()
            b.stop()
            a.stop()


def _browser(hub: RunningGateway, page_factory: Any, artifacts_dir: Path, year: int, visits: int) -> None:
    page, rec = page_factory(hub.base, viewport={"width": 1366, "height": 900})
    login(page, hub.base, *PROVINCE)
    show_office_year(page, "03390", year)
    assert page.locator('#totals [data-key="visits"] .v').inner_text() == str(visits)
    assert "luồng dữ liệu" in page.locator("#report-source").inner_text()
    bars = page.eval_on_selector_all("#chart-visits rect.bar", "els => els.map(e => Number(e.dataset.value))")
    assert sum(bars) == visits
    page.screenshot(path=str(artifacts_dir / "web-reports-hub.png"), full_page=True)
    assert not rec.external and not rec.errors, (rec.external, rec.errors)
