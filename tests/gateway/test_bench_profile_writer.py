"""Smoke test of ``bench.ingest.profile_writer``: it stores the bench's event stream through the real
writer and prints its figures; and the rollups the writer kept by deltas over that stream (a busy
office's day in batches) equal a recomputation from the derived rows."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from bench.ingest.profile_writer import _run
from gateway.store import Store, rollups
from gateway.store import schema as s

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _rollups(store: Store) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in s.ROLLUP_TABLES}


def test_profile_writer_runs_and_rollups_equal_recomputation(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'g.sqlite3'}"
    _run(url, 2000, 400, 6, tmp_path, 0)
    out = capsys.readouterr().out
    assert "2000 events, batches of 400" in out and "store, last fifth" in out
    store = Store(url)
    try:
        assert store.event_count() == 2000
        kept = _rollups(store)
        assert sum(r[4] for r in kept["rollup_day"]) == 500  # visits: issued, called, completed, rated
        with store.engine.begin() as conn:
            rollups.refresh(conn, store.dialect, rollups.all_office_days(conn), store.integrity.min_k, TZ)
        assert _rollups(store) == kept
    finally:
        store.close()
