"""The kiosk switches to a new release in process during the health check; if it is then unhealthy
(here: no broker connection, a real closed port), it puts its previous config back and rolls back."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import device.update_control
from contract.codec import encode
from contract.payloads import CommandRequest
from contract.topics import cmd_topic
from device.app import Kiosk
from device.config import load_config
from device.updates.apply import active_slot
from provisioning.signing import generate_key, load_key, public_raw, sign_bundle
from tests.device.helpers import outbox_events
from tests.device.kiosk_proc import write_config
from tests.support.mosquitto import free_port


class _Serve(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_bundle():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _config_bundle(tmp_path: Path, kiosk_toml: str) -> tuple[Any, str, bytes]:
    """A new offline key and a bundle (version 1.0.0) whose release overlays ``kiosk_toml``."""
    generate_key(tmp_path / "offline.key")
    key = load_key(tmp_path / "offline.key")
    src = tmp_path / "v1"
    (src / "config").mkdir(parents=True)
    (src / "config/kiosk.toml").write_text(kiosk_toml)
    bid, data = sign_bundle(key, src, "1.0.0")
    return key, bid, data


def test_unhealthy_after_switch_restores_previous_config(tmp_path: Path, http_bundle, monkeypatch) -> None:
    key, bid, data = _config_bundle(tmp_path, '[queue]\nlabel_prefix = "B"\n')
    _Serve.body = data

    closed = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens: the broker check must fail
    cfg = load_config(write_config(tmp_path / "kiosk.toml", broker={"url": closed},
                                   updates={"trusted_keys": [public_raw(key).hex()]}))
    monkeypatch.setattr(device.update_control, "UPDATE_BROKER_WAIT_S", 1.0)
    kiosk = Kiosk(cfg, tmp_path / "data", simulate=True)
    seen_during_check: list[str] = []
    components = kiosk.updates.components_problem

    def spy() -> str | None:
        seen_during_check.append(kiosk.cfg.queue.label_prefix)  # the new release is live in process
        return components()

    kiosk.updates.components_problem = spy
    try:
        url = f"http://127.0.0.1:{http_bundle.server_address[1]}/b.tar"
        req = CommandRequest(cmd_id=str(uuid.uuid4()), name="apply_update",
                             args={"url": url, "bundle_id": bid, "version": "1.0.0"},
                             issued_at=datetime.now(UTC), issued_by="test")
        topic = cmd_topic(cfg.device.office_code, cfg.device.id, "apply_update")
        out = kiosk.handle_command(topic, encode(req))
        assert out.ok  # the cmd.result event was stored
        results = [e["data"] for e in outbox_events(kiosk.store) if e["type"] == "update.result"]
        assert len(results) == 1 and results[0]["outcome"] == "rolled_back", results
        assert "not connected to the broker" in results[0]["message"]
        assert seen_during_check == ["B"]
        assert kiosk.cfg.queue.label_prefix == "" and kiosk.engine.cfg.queue.label_prefix == ""
        assert active_slot(tmp_path / "data") is None
        press = kiosk.handle_press("ticket")
        assert press.ok and press.label == "0001"
        assert any(e["type"] == "ticket.issued" and e["data"]["label"] == "0001"
                   for e in outbox_events(kiosk.store))
    finally:
        kiosk.shutdown()


def test_restart_trial_without_broker_rolls_back_and_restarts(tmp_path: Path, monkeypatch) -> None:
    """The kiosk re-executed itself on a new release (start-only sections changed) but cannot reach
    the broker within the wait: it swaps back, stores `rolled_back`, and asks for another restart."""
    from device.updates import handle_apply_update, recover_interrupted, release_dir
    from device.updates.apply import begin_restart_trial, in_restart_trial

    key, _, data = _config_bundle(tmp_path, "[buttons]\ndebounce_ms = 80\n")
    dd = tmp_path / "data"
    r = handle_apply_update({"url": "x"}, data_dir=dd, trusted_keys=[public_raw(key)], fetch=lambda u: data,
                            health_check=lambda: True)
    assert r["outcome"] == "applied"
    cmd = str(uuid.uuid4())
    assert begin_restart_trial(dd, cmd) and recover_interrupted(dd) is None and in_restart_trial(dd)

    closed = f"mqtt://127.0.0.1:{free_port()}"
    local = write_config(tmp_path / "kiosk.toml", broker={"url": closed})
    cfg = load_config(local, release_dir(dd))
    assert cfg.buttons.debounce_ms == 80
    monkeypatch.setattr(device.update_control, "UPDATE_BROKER_WAIT_S", 1.0)
    kiosk = Kiosk(cfg, dd, simulate=True)
    restarts = threading.Event()
    kiosk.restart_hook = restarts.set
    try:
        kiosk.updates.recover()  # what start() does first
        assert restarts.wait(60), "the kiosk did not ask to restart on the previous release"
        assert active_slot(dd) is None and not in_restart_trial(dd)
        results = [e["data"] for e in outbox_events(kiosk.store) if e["type"] == "update.result"]
        assert len(results) == 1 and results[0]["outcome"] == "rolled_back" and results[0]["cmd_id"] == cmd
        assert "not connected to the broker" in results[0]["message"]
        assert "did not come up healthy after restarting" in results[0]["message"]
    finally:
        kiosk.shutdown()
