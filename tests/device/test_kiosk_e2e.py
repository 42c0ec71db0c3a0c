"""The real kiosk process, a real Mosquitto, button presses over the HTTP sim API."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.codec import decode, encode
from contract.payloads import CommandRequest
from contract.topics import cmd_topic
from gateway.commands import sign_request
from tests.device.kiosk_proc import REPO, KioskProc, Watcher, write_config


@pytest.fixture
def watcher(mosquitto):
    w = Watcher(mosquitto.port)
    yield w
    w.close()


def _seqs_in_order(events: list[dict]) -> list[int]:
    seen, order = set(), []
    for e in events:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            order.append(e["seq"])
    return order


def _first_deliveries(watcher: Watcher) -> list[dict]:
    """Events in order of first arrival; asserts that every repeat is byte-identical to the first."""
    first: dict[str, bytes] = {}
    for raw in watcher.raw_events():
        eid = json.loads(raw)["event_id"]
        assert first.setdefault(eid, raw) == raw, f"event {eid} was resent with a different payload"
    return [json.loads(raw) for raw in first.values()]


def test_presses_become_ordered_events(tmp_path, mosquitto, watcher):
    cfg = write_config(tmp_path / "k.toml")
    k = KioskProc(cfg, mosquitto.url, tmp_path / "data").start()
    try:
        t1 = k.press("ticket")
        assert t1["ok"] and t1["ticket_no"] == 1 and t1["label"] == "0001"
        assert (tmp_path / "data" / "prints" / f"{t1['service_day']}-0001.bin").stat().st_size > 100
        t2 = k.press("ticket")
        assert t2["ticket_no"] == 2 and t2["waiting_ahead"] == 1
        k.press("ticket")
        assert k.press("next")["called_label"] == "0001"
        early = k.press("rate_3")  # 0001 is being served: no prompt yet, the press changes nothing
        assert not early["ok"] and early["kind"] == "rating_no_prompt"
        done = k.press("next")  # completes 0001 (its prompt opens) and calls 0002
        assert done["prompt_label"] == "0001" and done["called_label"] == "0002"
        assert k.status()["rating_prompt"]["label"] == "0001"
        assert k.press("rate_3")["ticket_no"] == 1
        assert k.press("no_show")["ok"]
        assert k.press("next")["called_label"] == "0003"
        assert k.press("recall")["ok"]
        assert k.press("next")["prompt_label"] == "0003"  # completes 0003, nobody left to call
        r1 = k.press("rate_1")
        assert r1["needs_reason"]
        assert k.status()["reason_pending"] is True
        import httpx

        rr = httpx.post(f"{k.base}/api/rating/reason/staff_attitude", timeout=10)
        assert rr.status_code == 200
        bad = httpx.post(f"{k.base}/api/sim/press/rate_9", timeout=10)
        assert bad.status_code == 404 and "unknown button" in bad.json()["detail"]
        expected = [
            "device.started",
            "ticket.issued",
            "ticket.issued",
            "ticket.issued",
            "ticket.called",
            "service.completed",
            "ticket.called",
            "rating.submitted",
            "ticket.no_show",
            "ticket.called",
            "ticket.recalled",
            "service.completed",
            "rating.submitted",
        ]
        watcher.wait_for(
            lambda: len({e["event_id"] for e in watcher.events()}) >= len(expected), 60, "events"
        )
        evs = _first_deliveries(watcher)  # QoS 1 may deliver an event twice; a resend must be identical
        assert [e["type"] for e in evs] == expected
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
        for e in evs:
            if "wait_s" in e["data"] and e["data"]["wait_s"] is not None:
                assert 0 <= e["data"]["wait_s"] < 600
            if e["data"].get("service_s") is not None:
                assert 0 <= e["data"]["service_s"] < 600
        assert evs[-1]["data"]["reason"] == "staff_attitude" and evs[-1]["data"]["level"] == 1
        assert evs[7]["data"]["level_label"] == "Rất hài lòng" and evs[7]["data"]["ticket_no"] == 1
        assert evs[-1]["data"]["ticket_no"] == 3
        with watcher.lock:
            for topic, payload, _ in watcher.messages:
                decode(topic, payload)  # everything the kiosk sent satisfies the contract
        watcher.wait_for(lambda: watcher.of_kind("health"), 30, "health")
        watcher.wait_for(lambda: watcher.of_kind("health")[-1]["refused"], 30, "refusals in health")
        h = watcher.of_kind("health")[-1]
        assert h["outbox_depth"] >= 0 and h["sw_version"]
        assert h["refused"] == {"rating_no_prompt": 1}
        assert watcher.of_kind("status")[-1]["state"] == "online"
        wavs = list((tmp_path / "data" / "audio").glob("*.wav"))
        assert len(wavs) >= 6  # three calls, a recall and two rating prompts were spoken
        assert len([w for w in wavs if "-rate-" in w.name]) == 2
    finally:
        assert k.terminate() == 0
    watcher.wait_for(lambda: watcher.of_kind("status")[-1]["state"] == "offline", 30, "offline status")
    assert watcher.of_kind("status")[-1]["reason"] == "shutdown"


def test_broker_outage_every_event_arrives_in_order(tmp_path, mosquitto):
    watcher = Watcher(mosquitto.port)
    cfg = write_config(tmp_path / "k.toml", device_id="kiosk-t2")
    k = KioskProc(cfg, mosquitto.url, tmp_path / "data").start()
    try:
        k.press("ticket")
        watcher.wait_for(lambda: len(watcher.events()) >= 2, 60, "first events")
        mosquitto.stop()
        acked = []
        for i in range(12):
            out = k.press("ticket" if i % 3 else "next")
            acked += out["event_ids"]
        assert k.status()["broker_connected"] is False
        mosquitto.start()
        watcher.wait_for(
            lambda: set(acked) <= {e["event_id"] for e in watcher.events()}, 90, "events after outage"
        )
        order = _seqs_in_order(watcher.events())
        assert order == sorted(order) and order == list(range(1, len(order) + 1))
    finally:
        k.terminate()
        watcher.close()


GATEWAY_KEY = Ed25519PrivateKey.generate()  # stands for the gateway's command key


def _cmd(name: str, args: dict | None = None) -> tuple[str, bytes]:
    """A command as the gateway sends it: signed for kiosk-t3 of LC-TEST (gateway/commands.py)."""
    req = sign_request(
        CommandRequest(cmd_id=str(uuid.uuid4()), name=name, args=args or {}, issued_at=datetime.now(UTC),
                       issued_by="test"),
        GATEWAY_KEY, "LC-TEST", "kiosk-t3",
    )
    return req.cmd_id, encode(req)


def test_commands_answered(tmp_path, mosquitto, watcher):
    pub = GATEWAY_KEY.public_key().public_bytes_raw().hex()
    cfg = write_config(tmp_path / "k.toml", device_id="kiosk-t3", commands={"trusted_keys": [pub]})
    k = KioskProc(cfg, mosquitto.url, tmp_path / "data").start()
    try:
        watcher.wait_for(lambda: watcher.of_kind("status"), 30, "online")
        k.press("ticket")
        day = k.status()["service_day"]

        def send(name: str, payload: bytes) -> None:
            watcher.client.publish(cmd_topic("LC-TEST", "kiosk-t3", name), payload, qos=1)

        def result(cid: str) -> dict:
            watcher.wait_for(
                lambda: [
                    e for e in watcher.events() if e["type"] == "cmd.result" and e["data"]["cmd_id"] == cid
                ],
                60,
                f"result of {cid}",
            )
            return next(
                e["data"]
                for e in watcher.events()
                if e["type"] == "cmd.result" and e["data"]["cmd_id"] == cid
            )

        cid, body = _cmd("reset_day", {"confirm": "RESET-1999-01-01"})
        send("reset_day", body)
        res = result(cid)
        assert res["ok"] is False and "RESET-" in res["message"]
        assert k.status()["waiting"] == 1
        cid, body = _cmd("reset_day", {"confirm": f"RESET-{day}"})
        send("reset_day", body)
        assert result(cid)["ok"] is True
        assert k.status()["waiting"] == 0
        assert any(e["type"] == "queue.reset" for e in watcher.events())
        cid = str(uuid.uuid4())
        send(
            "selftest", b'{"v": 1, "cmd_id": "' + cid.encode() + b'", "name": "selftest", "args": '
        )  # broken JSON
        res = result(cid)
        assert res["ok"] is False and "malformed" in res["message"]
        send("reload_config", b"\xff\xfe not json at all")
        watcher.wait_for(
            lambda: any(
                e["type"] == "cmd.result"
                and "malformed" in e["data"]["message"]
                and e["data"]["name"] == "reload_config"
                for e in watcher.events()
            ),
            60,
            "bad",
        )
        cid, body = _cmd("reload_config")
        send("reload_config", body)
        assert result(cid)["ok"] is True
        cid, body = _cmd("camera", {"state": "on"})
        send("camera", body)
        assert result(cid)["ok"] is False  # camera not enabled in this config
        cid, body = _cmd("apply_update", {})
        send("apply_update", body)
        assert result(cid)["ok"] is False
        cid, body = _cmd("selftest")
        send("selftest", body)
        res = result(cid)
        rep = next(e["data"] for e in watcher.events() if e["type"] == "selftest.report")
        assert rep["cmd_id"] == cid and res["ok"] is rep["passed"]
        names = {c["name"] for c in rep["components"]}
        assert {"button:ticket", "button:rate_3", "speaker", "printer", "clock_sync", "broker"} <= names
        assert rep["passed"], rep
        assert k.press("ticket")["ok"]  # still serving after all that
    finally:
        k.terminate()


def test_bad_config_fails_at_start_naming_the_key(tmp_path):
    cfg = write_config(tmp_path / "k.toml", rating={"scale": 4})
    r = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--simulate", "--config", str(cfg)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "config error: [rating] scale: must be 3 or 5, got 4" in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "device.cli",
            "check-config",
            "--config",
            str(REPO / "device" / "kiosk.example.toml"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "config OK" in r.stdout


def test_small_quota_refuses_tickets_clearly(tmp_path, mosquitto):
    cfg = write_config(tmp_path / "k.toml", device_id="kiosk-t4", outbox={"quota_mb": 0.004})
    mosquitto.stop()  # nothing leaves the outbox
    k = KioskProc(cfg, mosquitto.url, tmp_path / "data").start()
    try:
        results = [k.press("ticket") for _ in range(15)]
        refused = [r for r in results if not r["ok"]]
        assert refused and "bộ nhớ đầy" in refused[0]["message"]
        issued = [r["ticket_no"] for r in results if r["ok"]]
        assert issued == list(range(1, len(issued) + 1))
        st = k.status()
        assert st["outbox_rejected"] >= len(refused) and "bộ nhớ đầy" in st["message"]
        w = None
        mosquitto.start()
        w = Watcher(mosquitto.port)
        w.wait_for(lambda: k.status()["outbox_depth"] == 0, 60, "outbox drained")
        assert k.press("ticket")["ticket_no"] == len(issued) + 1  # service resumes, no number lost or reused
    finally:
        k.terminate()
        if w:
            w.close()


def test_power_cut_publishes_last_will_then_restart_is_process(tmp_path, mosquitto, watcher):
    cfg = write_config(tmp_path / "k.toml", device_id="kiosk-t5")
    k = KioskProc(cfg, mosquitto.url, tmp_path / "data").start()
    watcher.wait_for(lambda: any(s["state"] == "online" for s in watcher.of_kind("status")), 60, "online")
    k.kill9()
    watcher.wait_for(lambda: watcher.of_kind("status")[-1]["state"] == "offline", 60, "Last Will")
    assert watcher.of_kind("status")[-1]["reason"] == "connection_lost"
    k.start()
    try:
        watcher.wait_for(lambda: watcher.of_kind("status")[-1]["state"] == "online", 60, "online again")
        watcher.wait_for(
            lambda: len([e for e in watcher.events() if e["type"] == "device.started"]) == 2, 60, "2nd"
        )
        started = [e for e in watcher.events() if e["type"] == "device.started"]
        assert [e["data"]["restart"] for e in started] == ["boot", "process"]
        assert started[1]["seq"] > started[0]["seq"]
    finally:
        k.terminate()
    late = Watcher(mosquitto.port)  # a newcomer gets the retained status at once
    try:
        late.wait_for(lambda: late.of_kind("status"), 30, "retained status")
        with late.lock:
            assert [r for t, _, r in late.messages if t.endswith("/status")][0] is True
        assert late.of_kind("status")[0]["reason"] == "shutdown"
    finally:
        late.close()


@pytest.mark.parametrize(
    "sections, expected",
    [
        ({"device": {"officer_id": "x" * 300}}, "config error: [device] officer_id: at most 200 characters"),
        ({"outbox": {"quota_mb": float("nan")}}, "config error: [outbox] quota_mb: must be a finite number"),
    ],
)
def test_values_the_contract_cannot_carry_stop_the_kiosk(tmp_path, sections, expected):
    """Issue 8: a 300-character officer_id used to start and then break every `next`; nan passed."""
    cfg = write_config(tmp_path / "k.toml", **sections)
    r = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--simulate", "--config", str(cfg),
         "--data-dir", str(tmp_path / "d")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2 and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
