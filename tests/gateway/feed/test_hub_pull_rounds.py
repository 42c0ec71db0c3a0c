"""A commune feed that always answers "more" (a broken or hostile gateway) gets a bounded turn: the
hub's puller moves on to its other sources. Before, the puller followed it for ever, and every other
commune's figures stopped arriving at the hub."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from gateway.config import Settings
from gateway.feed.config import HubSettings
from gateway.feed.hub import MAX_PAGES_PER_ROUND, HubPuller
from gateway.registry import load_registry
from gateway.store import Store
from tests.gateway.feed.test_feed_source_binding import _FeedOf, _of


class _Endless(_FeedOf):
    """Always one record and ``more``; the cursor moves (``moving``) or not."""

    moving = True
    served = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).served += 1
        cursor = f"c{type(self).served}" if self.moving else "stuck"
        body = json.dumps({"records": self.records, "next_cursor": cursor, "more": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _pull_into(puller: HubPuller, cfg: HubSettings, done: list[int]) -> None:
    done.append(puller.pull(cfg.pull[0]))


def test_a_feed_that_always_has_more_gets_a_bounded_turn(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    _Endless.records = [json.loads(_of("lc-a", "03390", 1, 3))]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cfg = HubSettings(enabled=True, pull=[{"url": url, "source": "lc-a"}])
    puller = HubPuller(store, cfg)
    try:
        # stuck: one page moves off the cursor saved by the first round, the next does not
        for moving, pages in ((True, MAX_PAGES_PER_ROUND), (False, 2)):
            _Endless.moving, _Endless.served = moving, 0
            done: list[int] = []
            t = threading.Thread(target=_pull_into, args=(puller, cfg, done), daemon=True)
            t.start()
            t.join(timeout=120)
            alive = t.is_alive()
            puller._stop.set() if alive else None  # end the old code's endless loop before failing
            assert not alive, f"still pulling the same source after {_Endless.served} pages"
            assert done == [pages] and _Endless.served == pages
        assert store.counters()["hub:stored"] == 1  # the same record, once
    finally:
        server.shutdown()
        store.close()
