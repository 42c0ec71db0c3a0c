"""Odd and hostile input on the API, against the real app (uvicorn) on SQLite and PostgreSQL: each
request gets a clear 4xx answer, never a 500; the integrity endpoints need their role; the static
route serves nothing outside its folder."""

from __future__ import annotations

from tests.gateway.conftest import RunningGateway

HUGE = 2**70  # beyond any database integer

# (client, method, path, params/body): each must answer below 500 (and not 200 where it names nothing)
PROBES: list[tuple[str, str, str, dict | None]] = [
    ("public", "GET", "/api/v1/offices/%E2%80%AE03390", None),
    ("public", "GET", "/api/v1/offices/" + "9" * 5000, None),
    ("public", "GET", "/api/v1/offices/03390/kpis", {"day": "\u0661\u0662-01-01"}),
    ("public", "GET", "/api/v1/offices/03390/kpis", {"day": "2026-13-01"}),
    ("public", "GET", "/api/v1/offices/03390/kpis", {"day": "\x00"}),
    ("public", "GET", "/api/v1/kpis.csv", {"from": "2026-01-02", "to": "2026-01-01"}),
    ("public", "GET", "/api/v1/kpis.csv", {"from": "2026-01-01", "to": "2026-01-02", "level": "x"}),
    ("public", "GET", "/api/v1/units/%00/kpis", None),
    ("ops", "GET", "/api/v1/alerts", {"open_only": "maybe"}),
    ("ops", "GET", "/api/v1/offices/03390/flags", {"from": "2026-01-02", "to": "2026-01-01"}),
    ("ops", "GET", "/api/v1/offices/03390/flags", {"from": "-1"}),
    ("ops", "GET", "/api/v1/commands/" + "x" * 3000, None),
    ("ops", "POST", "/api/v1/offices/03390/flags/clear",
     {"kind": "visit", "counter": HUGE, "service_day": "2026-01-01", "ticket_no": 1}),
    ("ops", "POST", "/api/v1/offices/03390/flags/clear",
     {"kind": "visit", "counter": 1, "service_day": "2026-01-01", "ticket_no": HUGE}),
    ("ops", "POST", "/api/v1/offices/03390/flags/clear",
     {"kind": "visit", "counter": 1, "service_day": "9999-99-99", "ticket_no": 1}),
    ("ops", "POST", "/api/v1/offices/03390/flags/clear", {"kind": "rating", "event_id": "x" * 100_000}),
    ("ops", "POST", "/api/v1/offices/03390/flags/clear", {"kind": "rating", "event_id": 5}),
    ("ops", "POST", "/api/v1/offices/%E2%80%AE/flags/clear", {"kind": "rating", "event_id": "x"}),
    ("admin", "POST", "/api/v1/devices", {"device_id": "k-x1", "office_code": "03390", "counter": HUGE}),
    ("admin", "POST", "/api/v1/devices", {"device_id": "k-x1", "office_code": "\u202e", "counter": 1}),
    ("ops", "POST", "/api/v1/devices/" + "k" * 300 + "/commands", {"name": "selftest"}),
    ("public", "GET", "/static/..%2f..%2f..%2fetc%2fpasswd", None),
    ("public", "GET", "/static/%2e%2e/%2e%2e/pyproject.toml", None),
    ("public", "GET", "/static/a%00b.js", None),
    ("public", "GET", "/api/v1/updates/..%2f..%2fetc/bundle.tar", None),
]


def _probe(gw: RunningGateway) -> list[tuple[str, int]]:
    out = []
    for who, method, path, args in PROBES:
        client = getattr(gw, who)
        r = client.get(path, params=args) if method == "GET" else client.request(method, path, json=args)
        out.append((f"{method} {path[:80]} {str(args)[:80]}", r.status_code))
    return out


def check_odd_input(gw: RunningGateway) -> None:
    answers = _probe(gw)
    assert [a for a in answers if a[1] >= 500 or a[1] == 200] == [], answers
    # the integrity endpoints need a signed-in operator (admin to bind)
    assert gw.public.get("/api/v1/quarantine").status_code == 401
    assert gw.public.get("/api/v1/offices/03390/flags").status_code == 401
    assert gw.public.post("/api/v1/offices/03390/flags/clear",
                          json={"kind": "rating", "event_id": "x"}).status_code == 401
    body = {"device_id": "k-x2", "office_code": "03390", "counter": 1}
    assert gw.public.post("/api/v1/devices", json=body).status_code == 401
    assert gw.ops.post("/api/v1/devices", json=body).status_code == 403
    assert gw.app.state.store.device("k-x2") is None


def test_odd_input_sqlite(mosquitto, gateway_factory) -> None:
    check_odd_input(gateway_factory(mosquitto.url))


def test_odd_input_postgres(mosquitto, postgres, gateway_factory) -> None:
    check_odd_input(gateway_factory(mosquitto.url, postgres.url))


def test_flag_clear_needs_operator_and_csrf(mosquitto, gateway_factory) -> None:
    """The clear-flag endpoint with a browser session: a viewer is refused, an operator's cookie alone
    (a forged cross-site POST) is refused, the session's CSRF token is needed; nothing is audited."""
    import httpx

    from tests.gateway.web.conftest import OPERATOR, VIEWER, auth_section
    from tests.gateway.web.test_web_http import do_login, page_csrf

    gw = gateway_factory(mosquitto.url, auth=auth_section())
    body = {"kind": "rating", "event_id": "00000000-0000-4000-8000-000000000001"}
    with httpx.Client(base_url=gw.base, timeout=30) as op, \
            httpx.Client(base_url=gw.base, timeout=30) as viewer:  # argon2 logins on a loaded machine
        assert do_login(viewer, *VIEWER).status_code == 303
        assert viewer.post("/api/v1/offices/03390/flags/clear", json=body).status_code == 403
        assert viewer.get("/api/v1/offices/03390/flags").status_code == 403
        assert viewer.get("/api/v1/quarantine").status_code == 403
        assert do_login(op, *OPERATOR).status_code == 303
        r = op.post("/api/v1/offices/03390/flags/clear", json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = op.post("/api/v1/offices/03390/flags/clear", json=body, headers={"X-CSRF-Token": page_csrf(op)})
        assert r.status_code == 404  # accepted as a request; no such flag
    with gw.app.state.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar_one() == 0
