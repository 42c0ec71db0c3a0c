"""A broker that refuses the kiosk's events (its identity not yet in the ACL): none is lost.

Mosquitto acknowledges a publish its ACL denies; under MQTT 3.1.1 that PUBACK looks like a delivery
and the kiosk used to delete every event it sent (PLATFORM-NOTES, "A publish the ACL denies"). Under
MQTT 5 the PUBACK carries "Not authorized": the real kiosk process must keep every event in its
outbox, say so, back off, and deliver them all, once and in ``seq`` order, when the operator adds
its identity to the ACL and reloads the broker (SIGHUP).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.device.kiosk_proc import KioskProc, Watcher, write_config
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wait import wait_for

DEVICE, OFFICE, PASSWORD = "kiosk-t1", "LC-TEST", "s3cret-kiosk"
TICKETS = 8
# Anonymous clients (the watcher, standing for the gateway) read everything; the kiosk's user may
# only read its commands: its events, status and health are denied.
ACL_DENIED = f"topic read motcua/v1/#\n\nuser {DEVICE}\ntopic read motcua/v1/{OFFICE}/{DEVICE}/cmd/#\n"
ACL_FIXED = "topic read motcua/v1/#\n\npattern readwrite motcua/v1/+/%u/#\n"


@pytest.fixture
def acl_broker():
    if not shutil.which("mosquitto_passwd"):
        pytest.fail("mosquitto_passwd missing: apt-get install -y mosquitto-clients")
    work = Path(tempfile.mkdtemp(prefix="motcua-acl-"))  # not tmp_path: Mosquitto may run as 'mosquitto'
    os.chmod(work, 0o777)
    pw, acl = work / "passwd", work / "acl"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), DEVICE, PASSWORD], check=True)
    acl.write_text(ACL_DENIED)
    for f in (pw, acl):
        os.chmod(f, 0o644)
    port = free_port()
    listener = f"listener {port} 127.0.0.1\nallow_anonymous true\npassword_file {pw}\nacl_file {acl}\n"
    broker = Mosquitto(port=port, workdir=work, listener_conf=listener).start()
    try:
        yield broker, acl
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def _denied_events(broker: Mosquitto) -> int:
    return sum("Denied PUBLISH" in line and "/events'" in line for line in broker.log_text().splitlines())


def _refused(status: dict) -> int:
    return int(status["refused"].get("broker_publish", 0))


@pytest.mark.slow  # a kiosk process, two ACLs and the retry backoff: about 15 s
def test_denied_events_stay_in_the_outbox_until_the_acl_is_fixed(tmp_path, acl_broker):
    broker, acl = acl_broker
    watcher = Watcher(broker.port)
    cfg = write_config(tmp_path / "k.toml", DEVICE, OFFICE, broker={"username": DEVICE, "password": PASSWORD})
    k = KioskProc(cfg, broker.url, tmp_path / "data").start()
    try:
        for _ in range(TICKETS):
            assert k.press("ticket")["ok"]
        wait_for(lambda: _denied_events(broker) > TICKETS, 90, "the broker denied every event once")
        start = time.monotonic()
        wait_for(lambda: time.monotonic() - start > 5, 30, "a few retry rounds")
        s = k.status()
        depth = s["outbox_depth"]
        assert depth >= TICKETS + 1, f"refused events left the outbox: {depth} kept of >= {TICKETS + 1}"
        assert _refused(s) >= depth, f"{_refused(s)} refusals counted for {depth} refused events"
        assert "broker refused publish: Not authorized" in (s["last_error"] or ""), s["last_error"]
        # Backoff, not a spin: from the first refusal (>= 1 s, doubling) only a few resend rounds fit.
        assert _refused(s) <= 6 * depth, f"{_refused(s)} refusals of {depth} events: no backoff"
        assert watcher.events() == [], "the broker delivered a denied event"

        acl.write_text(ACL_FIXED)
        broker.reload()  # SIGHUP: Mosquitto re-reads the ACL
        wait_for(lambda: k.status()["outbox_depth"] == 0, 120, "the outbox drained once the ACL allows")
        wait_for(lambda: len(watcher.events()) >= depth, 60, "every kept event delivered")
        events = watcher.events()
        assert [e["seq"] for e in events] == list(range(1, depth + 1)), "not once each, in seq order"
        assert len({e["event_id"] for e in events}) == depth
        assert sum(e["type"] == "ticket.issued" for e in events) == TICKETS
    finally:
        k.terminate()
        watcher.close()
