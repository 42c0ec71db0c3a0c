"""The generated mosquitto.conf is a whole config that Mosquitto 2.0.11 runs as written, with the
queue sized from the fleet (computation stated in the file) and persistence on."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from provisioning.ca import init_ca
from provisioning.cli import main
from provisioning.mosquitto_conf import QueueSizing, write_broker_config
from tests.support.mosquitto import MOSQUITTO, free_port


def test_sizing_is_computed_and_validated() -> None:
    q = QueueSizing(kiosks=150, events_per_kiosk_day=400, outage_days=2)
    assert q.max_queued_messages == 120_000 and q.max_queued_bytes == 120_000 * 1024
    assert QueueSizing().max_queued_messages == 1_000_000
    for bad in ({"kiosks": 0}, {"outage_days": 0}, {"events_per_kiosk_day": -5}, {"inflight": 0}):
        with pytest.raises(ValueError):
            QueueSizing(**bad)


def test_cli_refuses_a_bad_size(tmp_path: Path, capsys) -> None:
    assert main(["ca", "init", "--dir", str(tmp_path / "ca")]) == 0
    rc = main(
        ["mosquitto-conf", "--dir", str(tmp_path / "ca"), "--out", str(tmp_path / "b"), "--kiosks", "0"]
    )
    assert rc == 2 and "kiosks must be at least 1" in capsys.readouterr().out


def test_generated_whole_config_runs_on_mosquitto(tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="motcua-conf-"))  # the mosquitto user must read it
    os.chmod(root, 0o777)
    port = free_port()
    ca = init_ca(tmp_path / "ca")
    files = write_broker_config(
        ca,
        root / "broker",
        port=port,
        bind="127.0.0.1",
        persistence_dir=root,
        sizing=QueueSizing(kiosks=150, events_per_kiosk_day=400),
    )
    text = files.conf.read_text()
    assert (
        "max_queued_messages 60000" in text
        and "150 kiosks x 400 events/day x 1 day(s) of gateway outage = 60000" in text
    )
    for line in (
        "persistence true",
        "max_inflight_messages 10000",
        "persistent_client_expiration 30d",
        "queue_qos0_messages false",
        "allow_anonymous false",
        "sys_interval 10",
    ):
        assert line in text.splitlines(), line
    assert "topic read $SYS/broker/#" in files.acl.read_text()  # the gateway reads the queue statistics
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(files.conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while (
            not any("running" in ln for ln in lines) and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert proc.poll() is None, "".join(lines)
        assert any(f"listen socket on port {port}" in ln for ln in lines), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(20)
        reader.join(5)
        shutil.rmtree(root, ignore_errors=True)
    out = "".join(lines)
    assert "Error" not in out and "Saving in-memory database" in out, out
