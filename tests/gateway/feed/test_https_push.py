"""HTTPS push with the hub down, then up: failures back off without moving the mark; once the hub
answers, the backlog goes out in order and the mark (on disk) reaches the last record."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from sqlalchemy import func, select

from gateway.auth import sha256_hex
from gateway.feed import schema as fs
from gateway.feed.config import FeedSettings
from gateway.feed.producer import FeedProducer
from gateway.feed.push import HttpsPusher, load_mark
from gateway.store import Store
from gateway.store import schema as s
from tests.gateway.conftest import RunningGateway, gateway_settings, wait_for
from tests.gateway.feed.test_feed_hub import HUB_TOKEN
from tests.support.mosquitto import Mosquitto, free_port


def _commune_store(path: Path) -> Store:
    store = Store(f"sqlite:///{path}")
    store.migrate()
    t0 = (int(time.time()) // 3600 - 4) * 3600
    day = time.strftime("%Y-%m-%d", time.gmtime(t0 + 7 * 3600))
    with store.engine.begin() as conn:
        conn.execute(s.visits.insert(), [
            {"office_code": office, "counter": 1, "service_day": day, "ticket_no": n,
             "issued_at": t0 + n * 600, "called_at": t0 + n * 600 + 60, "wait_s": 60.0,
             "completed_at": t0 + n * 600 + 90, "service_s": 30.0}
            for office in ("03390", "03405") for n in range(1, 12)])
    cfg = FeedSettings(enabled=True, source_id="lc-a", close_after_s=0)
    assert FeedProducer(store, cfg, wait_target_s=1200, timezone="Asia/Ho_Chi_Minh", min_k=5).run_once() >= 4
    return store


def test_https_push_waits_for_the_hub_then_catches_up(tmp_path: Path) -> None:
    store = _commune_store(tmp_path / "commune.sqlite3")
    port = free_port()
    cfg = FeedSettings(enabled=True, source_id="lc-a", https_url=f"http://127.0.0.1:{port}/api/v1/hub/records",
                       https_token=HUB_TOKEN, retry_min_s=0.2, retry_max_s=1.0)
    pusher = HttpsPusher(store, cfg)
    pusher.start()
    broker = Mosquitto().start()
    hub = None
    try:
        wait_for(lambda: pusher.failures >= 3, what="pushes failing while the hub is down")
        assert pusher.acked == 0 and load_mark(store, "https") == 0
        hub = RunningGateway(gateway_settings(tmp_path / "hub", broker.url, web={"port": port}, hub={
            "enabled": True,
            "ingest_tokens": [{"source": "lc-a", "token_sha256": sha256_hex(HUB_TOKEN)}]})).start()
        wait_for(lambda: pusher.backlog() == 0, what="backlog sent once the hub answers")
        with store.engine.connect() as conn:
            last, count = conn.execute(select(func.max(fs.feed_records.c.id), func.count())).one()
        assert load_mark(store, "https") == last
        with hub.app.state.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(fs.hub_records)).scalar_one() == count
        counters = hub.ops.get("/api/v1/feed/status").json()["hub_counters"]
        assert counters == {"hub:stored": count}  # each record once, in order (no stale)
    finally:
        pusher.stop()
        if hub is not None:
            hub.stop()
        broker.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)
        store.close()
