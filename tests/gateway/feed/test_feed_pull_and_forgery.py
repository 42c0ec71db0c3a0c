"""Pull mode, the pull API's auth and cursor, and forged records at the hub (counted, never a crash).

A commune gateway (feed on, no push) and a hub that pulls its HTTP feed two records a page, also
subscribed to an upstream Mosquitto (where forged records are published) and open to HTTPS push.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from contract.feed import feed_topic
from gateway.auth import sha256_hex
from gateway.feed.producer import encode_cursor
from tests.gateway.conftest import OPERATOR_TOKEN, RunningGateway, gateway_settings, wait_for
from tests.gateway.feed.scenario import Office, past_hours
from tests.gateway.feed.test_feed_hub import (
    FEED_TOKEN,
    HUB_TOKEN,
    _feed,
    _latest_revisions_equal,
    _matches,
    _send,
)
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.support.mosquitto import Mosquitto


def _forgeries(good: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """(expected outcome, topic, payload) for records a hub must refuse."""
    def rec(**changes: Any) -> dict[str, Any]:
        return {**good, **changes}

    def enc(d: dict[str, Any]) -> bytes:
        return json.dumps(d).encode()

    src, office = good["source"], good["office_code"]
    t = feed_topic(src, office)
    low_k = {"k": 2, "windows": 1, "visits": 3, "score_sum": 0.5, "class_share_sums": {"happy": 3.0}}
    future = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    return [
        ("rejected:invalid", t, b"{not json"),
        ("rejected:invalid", t, enc(rec(ticket_no=7))),  # a field the contract does not define
        ("rejected:invalid", t, enc(rec(served=good["visits"] + 1))),
        ("rejected:invalid", t, enc(rec(wait_count=good["wait_count"] + 1))),  # histogram disagrees
        ("rejected:invalid", t, enc(rec(hour_start="2026-01-01T00:30:00Z"))),
        ("rejected:invalid", t, json.dumps(good).replace('"wait_sum_s":', '"wait_sum_s":NaN,"x":').encode()),
        ("rejected:invalid", t, b"\xff\xfe"),
        ("rejected:too_large", t, b" " * 20_000),
        ("rejected:below_k", t, enc(rec(sentiment=low_k, revision=50))),
        ("rejected:unknown_source", feed_topic("lc-x", office), enc(rec(source="lc-x"))),
        ("rejected:topic_mismatch", feed_topic(src, "03405"), enc(rec(revision=51))),
        ("rejected:unknown_office", feed_topic(src, "99999"), enc(rec(office_code="99999"))),
        ("rejected:future_hour", t, enc(rec(hour_start=future.isoformat().replace("+00:00", "Z")))),
        ("rejected:foreign_source", feed_topic("lc-b", office), enc(rec(source="lc-b", revision=52))),
        ("duplicate", t, enc(good)),
    ]


def test_pull_auth_cursor_and_forged_records(tmp_path: Path) -> None:
    with Mosquitto() as up, Mosquitto() as ka, Mosquitto() as kh:
        a = RunningGateway(gateway_settings(tmp_path / "a", ka.url, feed=_feed("lc-a"))).start()
        hub = RunningGateway(gateway_settings(tmp_path / "hub", kh.url, hub={
            "enabled": True, "mqtt": {"url": up.url, "client_id": "hub-forge"}, "sources": ["lc-a", "lc-b"],
            "pull": [{"url": a.base, "source": "lc-a", "token": FEED_TOKEN}], "pull_interval_s": 0.3,
            "pull_page": 2,
            "ingest_tokens": [{"source": "lc-a", "token_sha256": sha256_hex(HUB_TOKEN)}]})).start()
        try:
            _run(a, hub, ka, up)
        finally:
            hub.stop()
            a.stop()


def _run(a: RunningGateway, hub: RunningGateway, ka: Mosquitto, up: Mosquitto) -> None:
    rng = random.Random(7)
    office = Office("03390", [EventFactory("k03390-q1", "03390", 1)])
    for h in past_hours(5)[:3]:
        office.add_hour(h, rng)
    _send(ka.port, [e for v in office.visits for e in (*v.issue(), *v.finish())])
    wait_for(lambda: _matches(hub, office), timeout=120, what="hub pulled A's feed")
    wait_for(lambda: _latest_revisions_equal(a, hub, "03390"), what="hub holds A's latest revisions")

    # the pull API: auth, cursor, pages
    assert httpx.get(f"{a.base}/api/v1/feed").status_code == 401
    assert httpx.get(f"{a.base}/api/v1/feed", headers={"Authorization": "Bearer nope"}).status_code == 401
    reader = httpx.Client(base_url=a.base, headers={"Authorization": f"Bearer {FEED_TOKEN}"})
    assert reader.post("/api/v1/feed").status_code == 405  # read-only
    assert reader.get("/api/v1/feed", params={"cursor": "garbage!"}).status_code == 400
    for forged in (encode_cursor(2**63), "ZmVlZDE6LTE", "ZmVlZDE677yR"):  # beyond BIGINT, "-1", a "１"
        assert reader.get("/api/v1/feed", params={"cursor": forged}).status_code == 400, forged
    assert reader.get("/api/v1/feed", params={"cursor": encode_cursor(2**63 - 1)}).json()["records"] == []
    assert reader.get("/api/v1/feed", params={"limit": 0}).status_code == 422
    assert a.ops.get("/api/v1/feed", params={"limit": 1}).status_code == 200  # any signed-in role
    everything = reader.get("/api/v1/feed", params={"limit": 1000}).json()
    assert not everything["more"] and len(everything["records"]) >= 3
    cursor, seen = "", []
    while True:
        page = reader.get("/api/v1/feed", params={"cursor": cursor, "limit": 2}).json()
        again = reader.get("/api/v1/feed", params={"cursor": cursor, "limit": 2}).json()
        assert again == page  # idempotent
        seen += page["records"]
        cursor = page["next_cursor"]
        if not page["more"]:
            break
    assert seen == everything["records"]
    assert reader.get("/api/v1/feed", params={"cursor": cursor}).json()["records"] == []
    reader.close()

    # forged records: over the upstream broker and by HTTPS push; counted, never stored, never a crash
    good = everything["records"][-1]  # the latest revision of its hour: resent, it is a duplicate
    forged = _forgeries(good)
    pub = Publisher(up.port)
    wait_for(lambda: hub.app.state.feed.subscriber.connected.is_set(), what="hub subscribed")
    for _outcome, topic, payload in forged:
        pub.raw(topic, payload)
    pub.flush()
    pub.close()
    assert httpx.post(f"{hub.base}/api/v1/hub/records", content=json.dumps(good)).status_code == 401
    push = httpx.Client(base_url=hub.base, headers={"Authorization": f"Bearer {HUB_TOKEN}"})
    http_outcomes = [push.post("/api/v1/hub/records", content=p).json()["outcome"]
                     for o, _t, p in forged if o not in ("rejected:topic_mismatch", "rejected:too_large")]
    push.close()
    want = Counter(o for o, _t, _p in forged)
    # the push token is lc-a's: a record naming lc-b is refused before ownership is even asked
    assert http_outcomes == [o.replace("foreign_source", "source_mismatch") for o, _t, _p in forged
                             if o not in ("rejected:topic_mismatch", "rejected:too_large")]
    want.update(http_outcomes)
    status = hub.ops.get("/api/v1/feed/status").json()
    wait_for(lambda: _counted(hub, want), timeout=60, what="every forgery counted")
    assert status["hub_enabled"]
    assert _matches(hub, office)  # figures unmoved
    assert _latest_revisions_equal(a, hub, "03390")
    assert hub.public.get("/api/v1/offices/03390").status_code == 200  # the hub still serves


def _counted(hub: RunningGateway, want: Counter[str]) -> bool:
    got = hub.ops.get("/api/v1/feed/status", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).json()
    counters = got["hub_counters"]
    return all(counters.get(f"hub:{k}", 0) >= v for k, v in want.items() if k != "duplicate")
