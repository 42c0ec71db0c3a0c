"""``motcua-gateway feed produce|status`` on a real SQLite database, and ``[feed]``/``[hub]`` errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import ConfigError, Settings
from gateway.store import Store
from gateway.store import schema as s


def test_feed_produce_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "g.sqlite3"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    t0 = (int(time.time()) // 3600 - 3) * 3600 + 60
    day = time.strftime("%Y-%m-%d", time.gmtime(t0 + 7 * 3600))  # Asia/Ho_Chi_Minh
    with store.engine.begin() as conn:
        conn.execute(s.visits.insert(), [
            {"office_code": "03390", "counter": 1, "service_day": day, "ticket_no": n, "issued_at": t0 + n,
             "called_at": t0 + n + 60, "wait_s": 60.0, "completed_at": t0 + n + 90, "service_s": 30.0}
            for n in range(1, 4)])
    store.close()
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "sqlite:///{db}"\n[feed]\nenabled = true\n'
                   'source_id = "lc-03390"\nclose_after_s = 0.0\n[feed.mqtt]\nurl = "mqtt://127.0.0.1:9"\n')
    assert main(["feed", "produce", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "produced 1 new record(s)" in out
    assert "acknowledged up to 0, waiting 1" in out
    assert main(["feed", "produce", "--config", str(cfg)]) == 0
    assert "produced 0 new record(s)" in capsys.readouterr().out


@pytest.mark.parametrize("raw, message", [
    ({"feed": {"enabled": True}}, "source_id is required"),
    ({"feed": {"mqtt": {"url": "mqtt://h:1883"}}}, "push targets set but enabled = false"),
    ({"feed": {"enabled": True, "source_id": "lc-a", "mqtt": {"url": "http://h"}}}, "mqtt://host:port"),
    ({"feed": {"enabled": True, "source_id": "LC A"}}, "source_id"),
    ({"feed": {"enabled": True, "source_id": "lc-a", "https_url": "ftp://x"}}, "https_url"),
    ({"feed": {"pull_tokens_sha256": ["abc"]}}, "pull_tokens_sha256"),
    ({"hub": {"pull": [{"url": "https://x", "source": "lc-a"}]}}, "enabled = false"),
    ({"hub": {"enabled": True, "pull": [{"url": "https://x"}]}}, r"pull.0.source: required key is missing"),
    # a token and figures in clear across a network: refused (before, http:// to any host was taken)
    ({"feed": {"enabled": True, "source_id": "lc-a", "https_url": "http://hub.example/api/v1/hub/records"}},
     "loopback only"),
    ({"hub": {"enabled": True, "pull": [{"url": "http://gw-03405.example:8000", "source": "lc-a"}]}},
     "loopback only"),
    ({"hub": {"enabled": True, "mqtt": {"url": "mqtt://h", "ca_file": "/no/ca.pem"}}}, "file not found"),
    ({"hub": {"enabled": True, "bogus": 1}}, r"\[hub\] bogus: unknown key"),
])
def test_feed_config_errors_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_dict(raw, env={})
