"""/reports downloads against the real gateway: who may read what (office heads only their offices),
and the JSON, the PDF text and the XLSX cells hold the period API's numbers.

Data: the last working days go through the real MQTT ingest (demo.history), the months before them
through demo.archive (rows identical to the writer's, tests/gateway/test_demo_archive.py).
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pypdf
import pytest
from sqlalchemy import select

from demo.archive import fill
from demo.history import generate, working_days
from gateway.auth import hash_password, sha256_hex
from gateway.booking.store import bookings
from gateway.store import schema as s
from gateway.store.rollups import refresh
from gateway.ticket_kinds import visit_kinds
from hil.harness.mosquitto import running_mosquitto
from tests.gateway.conftest import ADMIN_TOKEN, OPERATOR_TOKEN, RunningGateway, gateway_settings, wait_for
from tests.gateway.kiosk_sim import Publisher
from tests.gateway.web.layout import PHONE, horizontal_overflow
from tests.gateway.web.reports_page import login, show_office_year, wait_loaded

DEVICES = [("k03390-q1", "03390", 1), ("k03390-q2", "03390", 2), ("k03405-q1", "03405", 1)]
TOKENS = {"head": "head-token-0123456789abcdef0123456789", "province": "prov-token-0123456789abcdef01234567",
          "viewer": "view-token-0123456789abcdef012345678"}
LIVE_DAYS = 8
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HEAD = ("truong-bp", "head-pass-03390")
PROVINCE = ("so-noi-vu", "province-pass-12")


def _tokens() -> list[dict[str, Any]]:
    return [{"name": "ops", "role": "operator", "token_sha256": sha256_hex(OPERATOR_TOKEN)},
            {"name": "adm", "role": "admin", "token_sha256": sha256_hex(ADMIN_TOKEN)},
            {"name": "head", "role": "office_head", "offices": ["03390"],
             "token_sha256": sha256_hex(TOKENS["head"])},
            {"name": "prov", "role": "province", "token_sha256": sha256_hex(TOKENS["province"])},
            {"name": "view", "role": "viewer", "token_sha256": sha256_hex(TOKENS["viewer"])}]


@pytest.fixture(scope="module")
def broker():
    """One Mosquitto for the module (the function-scoped ``mosquitto`` fixture, shared)."""
    with running_mosquitto() as b:
        yield b


@pytest.fixture(scope="module")
def gw(broker, tmp_path_factory):
    """A gateway with ~5 months of history: 8 days through MQTT, the rest written by demo.archive."""
    mosquitto = broker
    users = [{"username": HEAD[0], "role": "office_head", "offices": ["03390"],
              "password_hash": hash_password(HEAD[1])},
             {"username": PROVINCE[0], "role": "province", "password_hash": hash_password(PROVINCE[1])}]
    settings = gateway_settings(tmp_path_factory.mktemp("reports"), mosquitto.url,
                                auth={"api_tokens": _tokens(), "users": users})
    g = RunningGateway(settings).start()
    today = g.app.state.kpi.today()
    live = working_days(today, LIVE_DAYS)
    older = working_days(today, 110)
    assert older[-LIVE_DAYS:] == live
    fill(g.app.state.store, DEVICES, older[0], older[-LIVE_DAYS - 1], seed=5, today=today)
    _kinds_and_bookings(g.app.state.store)
    events = generate(DEVICES, LIVE_DAYS, seed=5, today=today)
    pub = Publisher(mosquitto.port)
    for ev in events:
        pub.event(ev)
    pub.flush()
    wait_for(lambda: g.stats()["accepted"] >= len(events), timeout=120, what="history ingested")
    yield g
    pub.close()
    g.stop()


def _kinds_and_bookings(store: Any) -> None:
    """Every 5th archived ticket of 03390 a priority ticket for "land", every 7th an appointment for
    "civil" (its slot the issue hour, clock synchronised), and bookings for those days: the kiosks of
    demo.archive issue walk-ins only. The rollups of those days are recomputed by the writer's own
    function (gateway.store.rollups.refresh), as demo.archive does."""
    v = s.visits
    with store.engine.begin() as conn:
        rows = conn.execute(select(v.c.counter, v.c.service_day, v.c.ticket_no, v.c.issued_at).where(
            v.c.office_code == "03390", v.c.issued_at.is_not(None))).all()
        kinds, books = [], []
        for r in rows:
            kind = "priority" if r.ticket_no % 5 == 0 else "appointment" if r.ticket_no % 7 == 0 else None
            if kind is None:
                continue
            slot = None if kind == "priority" else datetime.fromtimestamp(r.issued_at, TZ).strftime("%H:00")
            kinds.append({"office_code": "03390", "counter": r.counter, "service_day": r.service_day,
                          "ticket_no": r.ticket_no, "kind": kind, "slot": slot, "issued_synced": True,
                          "service_field": "land" if kind == "priority" else "civil"})
            if kind == "appointment":
                code = f"B{r.counter}{r.service_day.replace('-', '')[2:]}{r.ticket_no:02d}"
                books += [{"code": f"{code}{i}", "office_code": "03390", "service_field": "civil",
                           "day": r.service_day, "slot": slot, "created_at": 0.0, "cancelled_at": None}
                          for i in range(1 + r.counter % 2)]
        conn.execute(visit_kinds.insert(), kinds)
        conn.execute(bookings.insert(), books)
        refresh(conn, store.dialect, {("03390", k["service_day"]) for k in kinds}, store.integrity.min_k, TZ)


def client(g, who: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}
    return httpx.Client(base_url=g.base, timeout=60, headers=headers)


def test_who_reads_which_report(gw) -> None:
    anon, viewer, head, prov = (client(gw, w) for w in (None, "viewer", "head", "province"))
    year = f"?period=year&year={date.today().year}"
    assert anon.get("/api/v1/reports/office/03390" + year).status_code == 401
    page = anon.get("/reports", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert viewer.get("/api/v1/reports/office/03390" + year).status_code == 403
    for path in ("/api/v1/reports/office/03390", "/api/v1/reports/unit/03390",
                 "/api/v1/reports/office/03390/pdf", "/api/v1/reports/office/03390/xlsx"):
        assert head.get(path + year).status_code == 200, path
    for path in ("/api/v1/reports/office/03405", "/api/v1/reports/unit/03405",
                 "/api/v1/reports/office/03405/pdf", "/api/v1/reports/office/03405/xlsx"):
        r = head.get(path + year)
        assert r.status_code == 403 and "03405" in r.json()["detail"], path
    for path in ("/api/v1/reports/office/03405", "/api/v1/reports/unit/03405",
                 "/api/v1/reports/office/03390"):
        assert prov.get(path + year).status_code == 200, path
    assert prov.get("/api/v1/reports/office/99999" + year).status_code == 404
    assert prov.get("/api/v1/reports/county/03390" + year).status_code == 404
    for bad in ("?period=quarter&year=2026&index=5", "?period=decade", "?period=year&year=1999",
                "?period=month&year=2026&index=13", "?period=year&year=abc"):
        r = prov.get("/api/v1/reports/office/03390" + bad)
        assert r.status_code == 422, (bad, r.status_code)


def test_period_api_officers_follow_the_report_scope(gw) -> None:
    """Office heads get their own office's per-officer figures in the period API, the province every
    office's; anyone else gets the public aggregates, and ?officers=true is refused (401/403)."""
    anon, viewer, head, prov = (client(gw, w) for w in (None, "viewer", "head", "province"))
    today = gw.app.state.kpi.today()
    q = {"start": f"{today.year}-01-01", "end": today.isoformat(), "by": "month"}

    def officers(c: httpx.Client, path: str, **extra: str) -> list[str]:
        r = c.get(path, params={**q, **extra})
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert r.json()["method"]["staff_figures"] == bool(r.json()["officers"])
        return [o["officer_id"] for o in r.json()["officers"]]

    own, other = "/api/v1/offices/03390/period", "/api/v1/offices/03405/period"
    own_unit = "/api/v1/units/03390/period"
    mine = officers(head, own)
    assert mine and mine == officers(gw.ops, own) == officers(prov, own)
    assert officers(head, own, officers="true") == mine
    assert officers(head, own_unit) == officers(prov, own_unit) != []
    assert officers(head, other) == [] and officers(prov, other) != []  # public figures, no officers
    assert officers(viewer, own) == [] and officers(anon, own) == []
    assert officers(prov, own, officers="false") == []
    totals = head.get(other, params=q).json()["totals"]
    assert totals == anon.get(other, params=q).json()["totals"]  # the aggregates stay public
    for c, path, code in ((head, other, 403), (head, "/api/v1/units/03405/period", 403), (viewer, own, 403),
                          (anon, own, 401)):
        r = c.get(path, params={**q, "officers": "true"})
        assert r.status_code == code, (path, r.status_code)
    assert prov.get(other, params={**q, "officers": "true"}).status_code == 200


def _api_period(g, report: dict[str, Any]) -> dict[str, Any]:
    p = report["period"]
    r = g.ops.get(f"/api/v1/{report['scope']['kind']}s/{report['scope']['code']}/period",
                  params={"start": p["start"], "end": p["end"], "by": p["by"]})
    assert r.status_code == 200, r.text
    return r.json()


PAIRS = [("visits", "visits"), ("served", "served"), ("no_shows", "no_show"), ("avg_wait_s", "wait_avg_s"),
         ("p90_wait_s", "wait_p90_s"), ("over_target_share", "over_target_share"), ("rated", "n_ratings"),
         ("not_satisfied", "not_satisfied"), ("satisfaction_rate", "satisfaction"),
         ("sentiment_score", "sentiment_index")]


def vi_number(v: float, decimals: int) -> str:
    """Written independently of gateway.reports.fmt: thousands '.', decimal ','."""
    whole = f"{v:,.{decimals}f}"
    return whole.replace(",", " ").replace(".", ",").replace(" ", ".")


@pytest.mark.parametrize(("kind", "code", "period"),
                         [("office", "03390", "year"), ("unit", "03390", "quarter"),
                          ("office", "03405", "month")])
def test_json_pdf_and_xlsx_hold_the_period_apis_numbers(gw, kind: str, code: str, period: str) -> None:
    prov = client(gw, "province")
    today = gw.app.state.kpi.today()
    q = {"period": period, "year": today.year, "index": (today.month - 1) // 3 + 1}
    if period == "month":  # the last whole month
        q = {"period": period, "year": today.year - (today.month == 1), "index": (today.month - 2) % 12 + 1}
    report = prov.get(f"/api/v1/reports/{kind}/{code}", params=q).json()
    api = _api_period(gw, report)
    assert report["totals"]["visits"] > 100
    for mine, theirs in PAIRS:
        assert report["totals"][mine] == api["totals"][theirs], mine
    assert [s["visits"] for s in report["series"]] == [s["visits"] for s in api["series"]]
    assert [s["avg_wait_s"] for s in report["series"]] == [s["wait_avg_s"] for s in api["series"]]
    mine = [(o["officer_id"], o["rank"], o["score"], o["ci_low"], o["enough_data"])
            for o in report["officers"]]
    theirs = [(o["officer_id"], o["rank"], o["shrunk_score"], o["satisfaction_low"], o["enough_data"])
              for o in api["officers"]]
    assert mine == theirs
    assert any(not o["enough_data"] for o in report["officers"]), "the substitute officer has a small sample"
    assert {r["reason"]: r["count"] for r in report["reasons"]} == api["totals"]["reasons"]
    agreement = api["agreement"]
    assert report["agreement"] == agreement and agreement["pairs"] > 0
    assert agreement["enough_data"] == (period != "month")  # one counter's month: 5 counter-weeks
    assert report["by_kind"] == api["by_kind"] and report["appointments"] == api["appointments"]
    kinds = {(k["kind"], k["service_field"]): k for k in api["by_kind"]}
    if code == "03390":
        assert set(kinds) == {("walk_in", None), ("priority", "land"), ("appointment", "civil")}
        assert kinds[("appointment", "civil")]["mean_punctuality_min"] is not None
        assert 0 < api["appointments"]["no_show_rate"] < 1
    want_sentiment = [c["sentiment_index"] for c in api["counters"]]
    assert [c["sentiment_score"] for c in report["counters"]] == want_sentiment

    pdf_resp = prov.get(f"/api/v1/reports/{kind}/{code}/pdf", params=q)
    assert pdf_resp.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf_resp.content)).pages)
    t = api["totals"]
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "Độc lập - Tự do - Hạnh phúc" in text
    assert report["period"]["label_vi"] in text
    for expected in (vi_number(t["visits"], 0), vi_number(t["wait_avg_s"] / 60, 1),
                     vi_number(t["wait_p90_s"] / 60, 1), vi_number(t["satisfaction"] * 100, 1) + " %",
                     vi_number(t["over_target_share"] * 100, 1) + " %", vi_number(t["n_ratings"], 0)):
        assert expected in text, (expected, text[:2000])
    for o in api["officers"]:
        assert o["officer_id"] in text
        if o["enough_data"]:
            lo, hi = (vi_number(o[k] * 100, 1) + " %" for k in ("satisfaction_low", "satisfaction_high"))
            assert f"{lo} – {hi}" in text
    assert "chưa đủ dữ liệu" in text
    flat = text.replace("\n", " ")
    assert "VIII. THEO LOẠI VÉ VÀ LĨNH VỰC" in flat
    for k in api["by_kind"]:
        if k["mean_wait_s"] is not None and k["kind"] != "walk_in":
            assert vi_number(k["mean_wait_s"] / 60, 1) in flat
    rate = api["appointments"]["no_show_rate"]
    assert f"tỷ lệ không đến {'–' if rate is None else vi_number(rate * 100, 1) + ' %'}" in flat
    if agreement["enough_data"]:
        assert f"ρ = {vi_number(agreement['spearman'], 2)}" in flat
        low, high = (vi_number(agreement[k], 2) for k in ("spearman_low", "spearman_high"))
        assert f"{low} đến {high}" in flat
        assert f"n = {vi_number(agreement['pairs'], 0)} quầy-tuần" in flat
    else:
        assert f"{agreement['pairs']} quầy-tuần có cả hai chỉ số" in flat

    xlsx_resp = prov.get(f"/api/v1/reports/{kind}/{code}/xlsx", params=q)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_resp.content))
    summary = {row[0]: row[1] for row in wb["Tổng hợp"].iter_rows(values_only=True) if row and row[0]}
    assert summary["Lượt khách (visits)"] == t["visits"]
    assert summary["Chờ TB, phút (avg wait, min)"] == pytest.approx(t["wait_avg_s"] / 60, rel=1e-12)
    assert summary["Tỷ lệ hài lòng (satisfaction)"] == t["satisfaction"]
    assert summary["Không hài lòng (not satisfied)"] == t["not_satisfied"]
    series = list(wb["Theo thời gian"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in series] == [s["visits"] for s in api["series"]]
    officers = {r[0]: r for r in wb["Theo cán bộ"].iter_rows(min_row=2, values_only=True)}
    for o in api["officers"]:
        row = officers[o["officer_id"]]
        assert row[2] == o["n"]
        assert row[6] == (o["shrunk_score"] if o["enough_data"] else None)
        assert row[7] == (o["rank"] if o["enough_data"] else None)
    last_kind = 1 + len(api["by_kind"])
    kind_rows = list(wb["Theo loại vé"].iter_rows(min_row=2, max_row=last_kind, values_only=True))
    assert [(r[2], r[3], r[4]) for r in kind_rows] == [(k["issued"], k["served"], k["no_show"])
                                                       for k in api["by_kind"]]
    assert [r[5] for r in kind_rows] == pytest.approx(
        [k["mean_wait_s"] / 60 if k["mean_wait_s"] is not None else None for k in api["by_kind"]])
    appt = {r[0]: r[1] for r in wb["Theo loại vé"].iter_rows(values_only=True) if r and r[0]}
    want_rate = None if rate is None else pytest.approx(rate, rel=1e-12)
    assert appt["Tỷ lệ không đến (no-show rate)"] == want_rate
    sheet = wb["Cảm xúc và đánh giá"]
    cells = {r[0]: r[1] for r in sheet.iter_rows(values_only=True) if r and r[0]}
    for title, key in (("Spearman ρ", "spearman"), ("Spearman thấp (low)", "spearman_low"),
                       ("Pearson r", "pearson"), ("Quầy-tuần so sánh (counter-weeks)", "pairs")):
        want = agreement[key]  # an XLSX cell keeps 15-16 significant digits of a float
        exact = want is None or isinstance(want, int)
        assert cells[title] == (want if exact else pytest.approx(want, rel=1e-12)), title
    last = 1 + len(api["counters"])
    assert [r[3] for r in sheet.iter_rows(min_row=2, max_row=last, values_only=True)] == want_sentiment


def test_missing_font_is_a_clear_error(tmp_path) -> None:
    code = ("from gateway.reports import pdf\n"
            "try:\n    pdf.register_fonts()\nexcept pdf.FontMissing as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"MOTCUA_REPORT_FONT_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert "fonts-dejavu-core" in out.stdout and str(tmp_path) in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------------------- in headless Chromium

def test_reports_page_desktop(gw, page_factory, artifacts_dir) -> None:
    page, rec = page_factory(gw.base, viewport={"width": 1366, "height": 900})
    login(page, gw.base, *PROVINCE)
    year = gw.app.state.kpi.today().year
    show_office_year(page, "03390", year)
    report = client(gw, "province").get("/api/v1/reports/office/03390",
                                        params={"period": "year", "year": year}).json()
    # the charts draw the report's figures: one bar per month with a visit, officers ranked or not
    bars = page.eval_on_selector_all("#chart-visits rect.bar", "els => els.map(e => Number(e.dataset.value))")
    assert bars == [s["visits"] for s in report["series"] if s["visits"] is not None]
    ranked = page.eval_on_selector_all("#chart-officers g.officer", "els => els.map(e => e.dataset.officer)")
    assert ranked == [o["officer_id"] for o in report["officers"] if o["enough_data"]]
    na = page.locator("#chart-officers .officer-na")
    assert na.count() == sum(1 for o in report["officers"] if not o["enough_data"]) > 0
    assert "chưa đủ dữ liệu" in (na.first.text_content() or "")
    assert "kéo về mức chung" in page.locator("#method").inner_text()  # the ranking in plain Vietnamese
    reasons = page.eval_on_selector_all(
        "#chart-reasons g.reason",
        "els => Object.fromEntries(els.map(e => [e.dataset.reason, +e.dataset.value]))")
    assert reasons == {r["reason"]: r["count"] for r in report["reasons"]}
    waits = page.eval_on_selector_all("#chart-wait circle[data-series^='trung bình']",
                                      "els => els.map(e => Number(e.dataset.value))")
    expected = [s["avg_wait_s"] / 60 for s in report["series"] if s["avg_wait_s"] is not None]
    assert waits == pytest.approx(expected)
    assert page.locator("#chart-forecast rect.bar").count() >= 5
    assert "MAPE" in page.locator("#forecast-error").inner_text()
    assert page.locator("#chart-accuracy circle").count() > 0
    a = report["agreement"]
    assert page.get_attribute("#agreement", "data-enough") == "true"
    assert float(page.get_attribute("#agreement-rho", "data-value")) == pytest.approx(a["spearman"])
    assert page.locator("#agreement-n").inner_text() == f"{a['pairs']:,}".replace(",", ".")
    assert page.locator("#chart-agreement circle.pt").count() == a["pairs"]
    sentiment = page.eval_on_selector_all("#sentiment-table td.sentiment",
                                          "els => els.map(e => e.textContent)")
    assert len(sentiment) == len(report["counters"]) and all(v != "—" for v in sentiment)
    kinds = page.eval_on_selector_all("#kind-table tbody tr", "els => els.map(e => [e.dataset.kind, "
                                      "e.dataset.field, Number(e.dataset.wait)])")
    assert kinds == [[k["kind"], k["service_field"] or "", pytest.approx(k["mean_wait_s"])]
                     for k in report["by_kind"]]
    assert float(page.get_attribute("#appointments", "data-rate")) == pytest.approx(
        report["appointments"]["no_show_rate"])
    page.locator("#kinds").screenshot(path=str(artifacts_dir / "web-reports-kinds.png"))
    page.locator("#sentiment-section").screenshot(path=str(artifacts_dir / "web-reports-sentiment.png"))
    pdf_href = page.get_attribute("#dl-pdf", "href")
    got = page.request.get(gw.base + pdf_href)
    assert got.status == 200 and got.headers["content-type"] == "application/pdf"
    page.screenshot(path=str(artifacts_dir / "web-reports-desktop.png"), full_page=True)
    assert not rec.external and not rec.errors, (rec.external, rec.errors)


def test_reports_page_shows_the_last_choice_when_answers_cross(gw, page_factory) -> None:
    """Answers that arrive out of order (an earlier, slower report after the one the form asks for)
    never replace it: the requests for the other periods are held until the year's report is shown,
    then released."""
    page, rec = page_factory(gw.base, viewport={"width": 1366, "height": 900})
    held: list[Any] = []

    def hold_other_periods(route: Any) -> None:
        if "period=year" in route.request.url:
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/v1/reports/office/**", hold_other_periods)
    login(page, gw.base, *PROVINCE)
    year = gw.app.state.kpi.today().year
    show_office_year(page, "03390", year)
    assert held, "no earlier request was held: the test would prove nothing"
    visits = page.locator('#totals [data-key="visits"] .v').inner_text()
    for route in held:
        route.continue_()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    assert page.evaluate("() => document.querySelector('.reports').dataset.loaded") == f"office/03390/{year}"
    assert page.locator('#totals [data-key="visits"] .v').inner_text() == visits
    assert not rec.external, rec.external


def test_reports_page_phone_for_an_office_head(gw, page_factory, artifacts_dir) -> None:
    page, rec = page_factory(gw.base, **PHONE)
    login(page, gw.base, *HEAD)
    options = page.eval_on_selector_all("#scope option", "els => els.map(e => e.value)")
    assert options == ["office/03390", "unit/03390"]  # only the head's office and its unit
    quarter = (gw.app.state.kpi.today().month - 1) // 3 + 1
    wait_loaded(page, f"office/03390/{gw.app.state.kpi.today().year}-Q{quarter}")
    assert page.locator("#chart-visits rect.bar").count() > 5
    width, viewport = horizontal_overflow(page)
    assert width <= viewport, (width, viewport)
    page.screenshot(path=str(artifacts_dir / "web-reports-phone.png"), full_page=True)
    # another office's report, asked for directly, is refused
    assert page.request.get(gw.base + "/api/v1/reports/office/03405").status == 403
    assert not rec.external and not rec.errors, (rec.external, rec.errors)


def test_map_panel_shows_todays_kinds(gw, page_factory, artifacts_dir) -> None:
    """The map's office panel: today's waits by ticket kind and field and the bookings, as
    /api/v1/offices/{code}/kinds gives them (six tickets of today written here, today may be a
    weekend: two walk-ins, two priority tickets for "land", two appointments for "civil"; one booking)."""
    store, now = gw.app.state.store, time.time()
    today = gw.app.state.kpi.today().isoformat()
    kinds = ["walk_in", "walk_in", "priority", "priority", "appointment", "appointment"]
    with store.engine.begin() as conn:
        conn.execute(s.visits.insert(), [
            {"office_code": "03390", "counter": 2, "service_day": today, "ticket_no": 900 + i,
             "issued_at": now - 3000 + 60 * i, "called_at": now - 2000 + 60 * i, "wait_s": 1000.0 + 100 * i}
            for i in range(6)])
        conn.execute(visit_kinds.insert(), [
            {"office_code": "03390", "counter": 2, "service_day": today, "ticket_no": 900 + i, "kind": k,
             "service_field": {"priority": "land", "appointment": "civil"}[k], "slot": None,
             "issued_synced": True} for i, k in enumerate(kinds) if k != "walk_in"])
        conn.execute(bookings.insert(), [{"code": "TODAY1", "office_code": "03390", "service_field": "civil",
                                          "day": today, "slot": "15:00", "created_at": 0.0,
                                          "cancelled_at": None}])
        refresh(conn, store.dialect, {("03390", today)}, store.integrity.min_k, TZ)  # the writer's function
    api = httpx.get(gw.base + "/api/v1/offices/03390/kinds", timeout=30).json()
    pairs = {(k["kind"], k["service_field"]): k for k in api["by_kind"]}
    assert pairs[("priority", "land")]["mean_wait_s"] == 1250.0
    assert pairs[("appointment", "civil")]["issued"] == 2
    page, rec = page_factory(gw.base, viewport={"width": 1366, "height": 900})
    page.goto(gw.base + "/map")
    page.locator('#office-list button[data-office="03390"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#panel-kinds tr[data-kind]", timeout=60_000)
    got = page.eval_on_selector_all("#panel-kinds tr[data-kind]",
                                    "els => els.map(e => [e.dataset.kind, e.dataset.field, "
                                    "+e.dataset.issued])")
    assert got == [[k["kind"], k["service_field"] or "", k["issued"]] for k in api["by_kind"]]
    row = page.locator('#panel-kinds tr[data-kind="priority"]').inner_text()
    assert "Ưu tiên · land" in row and "20,8 phút" in row  # 1,250 s
    assert "1 lượt đặt, 2 đã lấy vé" in page.locator("#panel-appointments").inner_text()
    page.locator("#panel-kinds").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "web-map-panel-kinds.png"))
    assert not rec.external and not rec.errors, (rec.external, rec.errors)
    phone, phone_rec = page_factory(gw.base, **PHONE)  # the table never widens a phone's page
    phone.goto(gw.base + "/map")
    phone.locator('#office-list button[data-office="03390"]').click()
    phone.wait_for_selector("#panel-kinds tr[data-kind]", timeout=60_000)
    width, viewport = horizontal_overflow(phone)
    assert width <= viewport, (width, viewport)
    assert not phone_rec.external and not phone_rec.errors, (phone_rec.external, phone_rec.errors)
