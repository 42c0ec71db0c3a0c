"""KPI formulas, the forecast and its error, retention, config and registry errors (real SQLite)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gateway.config import ConfigError, KpiSettings, RetentionSettings, Settings
from gateway.kpi import OFFICE_HOURS, KpiService, p90, rating_summary
from gateway.registry import load_registry
from gateway.retention import Retention
from gateway.store import Store
from gateway.store import schema as s

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "gateway.example.toml"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(f"sqlite:///{tmp_path / 'kpi.sqlite3'}")
    st.migrate()
    st.load_registry(load_registry(Settings().registry_file))
    return st


def test_p90_is_nearest_rank() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 9, 10, 11, 101):
        v = list(rng.uniform(0, 100, n))
        assert p90(v) == float(np.percentile(v, 90, method="inverted_cdf"))
    assert p90([]) is None


def test_satisfaction_rate_formula() -> None:
    rows = [{"level": lv, "scale": 3} for lv in (1, 1, 2, 3, 3, 3, 3, 2)]
    r = rating_summary(rows)
    assert r["rated"] == 8 and r["not_satisfied"] == 2
    assert r["satisfaction_rate"] == (8 - 2) / 8
    assert r["ratings"] == {"1": 2, "2": 2, "3": 4}
    assert rating_summary([])["satisfaction_rate"] is None


def _visit(office: str, day: date, hour: int, n: int) -> dict:
    ts = datetime(day.year, day.month, day.day, hour, 10, tzinfo=TZ).timestamp()
    return {
        "office_code": office,
        "counter": 1,
        "service_day": day.isoformat(),
        "ticket_no": n,
        "device_id": "k03390-q1",
        "label": f"{n:04d}",
        "issued_at": ts,
        "called_at": ts + 60,
        "completed_at": ts + 120,
        "no_show_at": None,
        "discarded_at": None,
        "wait_s": 60.0,
        "service_s": 60.0,
        "officer_id": None,
        "recalls": None,
    }


def test_forecast_and_its_error(store: Store) -> None:
    """Arrivals follow weekday×hour pattern f; the held-out week gets +1 per hour on Mondays.
    Forecast = mean of the 4 previous same weekdays; MAE computed here by hand."""
    day = date(2026, 11, 29)  # a Sunday

    def f(d: date, h: int) -> int:
        return (d.isoweekday() + h) % 4

    rows = []
    n = 0
    for i in range(35):
        d = day - timedelta(days=i)
        for h in OFFICE_HOURS:
            k = f(d, h) + (1 if i < 7 and d.isoweekday() == 1 else 0)
            for _ in range(k):
                n += 1
                rows.append(_visit("03390", d, h, n))
    with store.engine.begin() as conn:
        conn.execute(s.visits.insert(), rows)
    fc = KpiService(store, KpiSettings()).forecast("03390", day)
    nxt = fc["next_week"]
    assert [x["day"] for x in nxt] == [(day + timedelta(days=i)).isoformat() for i in range(1, 8)]
    for x in nxt:
        d = date.fromisoformat(x["day"])
        for hh in x["hours"]:
            expected = f(d, hh["hour"]) + (0.25 if d.isoweekday() == 1 else 0)  # 1 of 4 weeks had +1
            assert hh["arrivals"] == pytest.approx(expected)
    # held-out week: Monday off by exactly 1 for every office hour, other days exact
    assert fc["error"]["value"] == pytest.approx(len(OFFICE_HOURS) / (7 * len(OFFICE_HOURS)), abs=1e-3)
    assert fc["error"]["held_out_to"] == day.isoformat() and fc["error"]["points"] == 7 * len(OFFICE_HOURS)
    assert fc["error"]["history_days"] == 28


def test_retention_keeps_aggregates(store: Store) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=TZ).timestamp()
    old, recent = now - 100 * 86400, now - 86400
    ev = {
        "type": "ticket.issued",
        "device_id": "k03390-q1",
        "office_code": "03390",
        "ts": old,
        "clock_synced": True,
        "seq": 1,
        "boot_id": "b",
        "mono_ms": 1,
        "data": {},
    }
    with store.engine.begin() as conn:
        conn.execute(
            s.events.insert(),
            [
                {**ev, "event_id": f"00000000-0000-0000-0000-00000000000{i}", "received_at": t, "seq": i}
                for i, t in ((1, old), (2, recent))
            ],
        )
        conn.execute(s.visits.insert(), [_visit("03390", date(2026, 8, 1), 9, 1)])
    out = Retention(store, RetentionSettings(raw_days=90, aggregate_days=3650)).run(now)
    assert out["events"] == 1 and out["visits"] == 0
    assert store.event_count() == 1
    with store.engine.connect() as conn:
        assert conn.execute(s.visits.select()).all()


def test_example_config_runs_as_is_and_errors_name_the_key(tmp_path: Path) -> None:
    st = Settings.load(EXAMPLE, env={})
    assert st.web.port == 8000 and st.broker.embedded and st.database_url.startswith("sqlite:///")
    assert Settings.load(
        EXAMPLE, env={"MOTCUA_DB_URL": "postgresql+psycopg://u@h/db"}
    ).database_url.startswith("postgresql")
    cases = {
        "[web]\nport = 0\n": "[web] port",
        '[web]\nport = "80"\n': "[web] port",
        '[broker]\nurl = "http://x"\n': "[broker] url",
        '[broker]\nca_file = "/nope.pem"\n': "[broker] ca_file",
        '[database]\nurl = "mysql://x"\n': "[database] url",
        "[retention]\nraw_days = 0\n": "[retention]",
        "[webb]\n": "[webb]: unknown section",
        '[alerts]\nwebhook = "x"\n': "[alerts] webhook: unknown key",
        '[kpi]\ntimezone = "Mars/Base"\n': "[kpi] timezone",
        "data_dir = 5\n": "data_dir",
        "[web\n": "not valid TOML",
    }
    for text, needle in cases.items():
        p = tmp_path / "c.toml"
        p.write_text(text)
        with pytest.raises(ConfigError) as exc:
            Settings.load(p, env={})
        assert needle in str(exc.value), (text, str(exc.value))
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "missing.toml")


def test_registry_is_post_2025_lai_chau_and_checked(tmp_path: Path) -> None:
    reg = load_registry(Settings().registry_file)
    codes = {u["code"] for u in reg["units"]}
    assert codes == {"03390", "03405", "03424", "03430", "03394", "03408"}
    for o in reg["offices"]:
        assert 103.416 <= o["lon"] <= 103.782 and 22.168 <= o["lat"] <= 22.492
    olds = {m["old_name"]: m for m in reg["unit_mapping"]}
    assert olds["Thị trấn Tam Đường"]["new_code"] == "03390" and "old_code" not in olds["Thị trấn Tam Đường"]
    assert olds["Xã Giang Ma"]["old_code"] == "03405"
    assert {d["device_id"] for d in reg["devices"]} == {
        f"k{o}-q{c}" for o in ("03390", "03405") for c in (1, 2, 3)
    }
    bad = tmp_path / "r.toml"
    bad.write_text(
        '[[units]]\ncode="1"\nname="x"\n[[offices]]\ncode="o"\nname="o"\nunit_code="9"\nlat=1\nlon=1\n'
    )
    with pytest.raises(ValueError, match="unknown unit_code"):
        load_registry(bad)
