"""A commune speaks only for itself at the hub: an HTTPS push token and a pulled URL are each bound to
one source id, so a commune cannot post records under another commune's source id (which, with a
higher revision, replaced that commune's figures and made its real records ``stale`` for ever)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from contract.config_errors import ConfigError
from gateway.auth import sha256_hex
from gateway.config import Settings
from gateway.feed.config import HubSettings
from gateway.feed.hub import HubPuller
from gateway.feed.hub_store import accept, hub_period
from gateway.registry import load_registry
from gateway.store import Store
from tests.gateway.conftest import gateway_settings
from tests.gateway.feed.test_hub_store import _record

TOKEN_A, TOKEN_B = "hub-push-token-of-commune-a-0123", "hub-push-token-of-commune-b-4567"
HOUR = (int(time.time()) // 3600 - 3) * 3600  # closed


def _of(source: str, office: str, revision: int, visits: int) -> str:
    return _record(office, HOUR, revision, visits).model_copy(update={"source": source}).model_dump_json()


def test_a_push_token_brings_its_own_source_only(mosquitto, gateway_factory):
    hub = gateway_factory(mosquitto.url, hub={"enabled": True, "sources": ["lc-a", "lc-b"], "ingest_tokens": [
        {"source": "lc-a", "token_sha256": sha256_hex(TOKEN_A)},
        {"source": "lc-b", "token_sha256": sha256_hex(TOKEN_B)}]})

    def push(token: str, body: str) -> str:
        r = hub.public.post("/api/v1/hub/records", content=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        return r.json()["outcome"]

    assert push(TOKEN_B, _of("lc-b", "03405", 1, 4)) == "stored"
    # commune A names B's source id for B's office, at a revision B will never reach
    assert push(TOKEN_A, _of("lc-b", "03405", 999_999, 90)) == "rejected:source_mismatch"
    assert push(TOKEN_A, _of("lc-b", "03390", 1, 90)) == "rejected:source_mismatch"  # not B's office yet
    assert push(TOKEN_B, _of("lc-b", "03405", 2, 5)) == "stored"  # B's next revision is not "stale"
    sums = hub_period(hub.app.state.store, HOUR, HOUR + 3600)
    assert sums["03405"]["visits"] == 5 and "03390" not in sums
    assert push(TOKEN_A, _of("lc-a", "03390", 1, 3)) == "stored"  # A's own
    counters = hub.ops.get("/api/v1/feed/status").json()["hub_counters"]
    assert counters["hub:rejected:source_mismatch"] == 2
    r = hub.public.post("/api/v1/hub/records", content=_of("lc-a", "03390", 2, 3),
                        headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401


class _FeedOf(BaseHTTPRequestHandler):
    """A commune gateway's /api/v1/feed, serving whatever records the test put in ``records``."""

    records: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"records": self.records, "next_cursor": "x", "more": False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_a: object) -> None:
        pass


def test_a_pulled_commune_cannot_speak_for_another(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    _FeedOf.records = [json.loads(_of("lc-b", "03405", 999_999, 90)), json.loads(_of("lc-a", "03390", 1, 3))]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FeedOf)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        cfg = HubSettings(enabled=True, sources=["lc-a", "lc-b"], pull=[{"url": url, "source": "lc-a"}])
        assert HubPuller(store, cfg).pull(cfg.pull[0]) == 2
        assert set(hub_period(store, HOUR, HOUR + 3600)) == {"03390"}
        counters = store.counters()
        assert counters["hub:rejected:source_mismatch"] == 1 and counters["hub:stored"] == 1
    finally:
        server.shutdown()
        store.close()


def test_every_bound_source_must_be_an_accepted_source(tmp_path: Path):
    with pytest.raises(ConfigError, match="lc-z"):
        gateway_settings(tmp_path, "mqtt://127.0.0.1:1", hub={"enabled": True, "sources": ["lc-a"], "pull": [
            {"url": "http://127.0.0.1:1", "source": "lc-z"}]})


def test_a_commune_cannot_take_an_office_listed_for_another(tmp_path: Path):
    """Before: an office belonged to the first source heard, so a commune that sent first (a rogue one,
    or one misconfigured with a neighbour's code) took the office, and its real commune was refused."""
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    cfg = HubSettings(enabled=True, source_offices={"lc-a": ["03390"], "lc-b": ["03405"]})
    now = HOUR + 7200
    try:
        assert accept(store, _of("lc-a", "03405", 1, 90), cfg, now=now) == "rejected:foreign_office"
        assert accept(store, _of("lc-b", "03390", 1, 90), cfg, now=now) == "rejected:foreign_office"
        assert accept(store, _of("lc-x", "03405", 1, 90), cfg, now=now) == "rejected:foreign_office"
        assert accept(store, _of("lc-b", "03405", 1, 4), cfg, now=now) == "stored"
        assert accept(store, _of("lc-a", "03390", 1, 3), cfg, now=now) == "stored"
        sums = hub_period(store, HOUR, HOUR + 3600)
        assert {o: v["visits"] for o, v in sums.items()} == {"03390": 3, "03405": 4}
    finally:
        store.close()
    with pytest.raises(ConfigError, match="03405"):
        gateway_settings(tmp_path, "mqtt://127.0.0.1:1", hub={"enabled": True, "source_offices": {
            "lc-a": ["03405"], "lc-b": ["03405"]}})
