"""Two update.result events for one cmd_id (applied, then rolled_back after a failed restart trial)
through the real gateway and a real Mosquitto: the later one wins, replays and older resends do not."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from contract.payloads import Event, EventType
from provisioning.signing import generate_key, load_key, public_raw, sign_bundle
from tests.gateway.conftest import RunningGateway, wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher

OFFICE = "03390"
DEVICES = ("k-03390-11", "k-03390-12")
ROLLBACK_MSG = "did not come up healthy after restarting: broker not connected; rolled back to factory"


def _rollout(gw: RunningGateway, tmp: Path) -> tuple[str, dict[str, str]]:
    """Upload a signed bundle and roll it out to OFFICE; returns (bundle_id, device -> cmd_id)."""
    generate_key(tmp / "offline.key")
    key = load_key(tmp / "offline.key")
    src = tmp / "src"
    (src / "config").mkdir(parents=True)
    (src / "config/kiosk.toml").write_text("[buttons]\ndebounce_ms = 40\n")
    bundle_id, bundle = sign_bundle(key, src, "2.1.0", offices=[OFFICE])
    key_body = {"public_key": public_raw(key).hex()}
    assert gw.admin.post("/api/v1/updates/keys", json=key_body).status_code == 201
    assert gw.admin.post("/api/v1/updates", content=bundle).status_code == 201
    for i, dev in enumerate(DEVICES, start=1):
        body = {"device_id": dev, "office_code": OFFICE, "counter": i}
        assert gw.admin.post("/api/v1/devices", json=body).status_code == 201
    r = gw.admin.post(f"/api/v1/updates/{bundle_id}/rollout", json={"offices": [OFFICE]})
    assert r.status_code == 202, r.text
    cmds = {d["device_id"]: d["cmd_id"] for d in r.json()["devices"] if d["device_id"] in DEVICES}
    assert set(cmds) == set(DEVICES)
    return bundle_id, cmds


def _result(bundle_id: str, outcome: str, message: str, cmd_id: str) -> dict[str, Any]:
    return {"bundle_id": bundle_id, "version": "2.1.0", "outcome": outcome, "message": message,
            "cmd_id": cmd_id}


def _device(gw: RunningGateway, bundle_id: str, dev: str) -> dict[str, Any]:
    d = gw.ops.get(f"/api/v1/updates/{bundle_id}").json()
    return next(x for x in d["rollouts"][0]["devices"] if x["device_id"] == dev)


def _send_and_settle(gw: RunningGateway, pub: Publisher, ev: Event, counter: str) -> None:
    """Publish ``ev`` and wait until the gateway counted it (``accepted`` or ``duplicates``)."""
    before = gw.stats()[counter]
    pub.event(ev)
    pub.flush()
    wait_for(lambda: gw.stats()[counter] > before, 90, f"{counter} to grow")


def test_rollback_after_applied_wins_and_replays_do_not_undo_it(
    mosquitto: Any, gateway_factory: Any, tmp_path: Path
) -> None:
    _applied_then_rolled_back(gateway_factory(mosquitto.url), mosquitto, tmp_path)


def test_rollback_after_applied_on_postgres(mosquitto, postgres, gateway_factory, tmp_path: Path) -> None:
    """Same on PostgreSQL (the settlement reads the command row FOR UPDATE)."""
    _applied_then_rolled_back(gateway_factory(mosquitto.url, postgres.url), mosquitto, tmp_path)


def _applied_then_rolled_back(gw: RunningGateway, mosquitto: Any, tmp_path: Path) -> None:
    bundle_id, cmds = _rollout(gw, tmp_path)
    dev = DEVICES[0]
    cmd_id = cmds[dev]
    f = EventFactory(dev, OFFICE, 1)
    pub = Publisher(mosquitto.port)
    try:
        applied = f.event(
            EventType.UPDATE_RESULT,
            _result(bundle_id, "applied", "applied; restarting the kiosk to apply: buttons", cmd_id),
        )
        cmd_ok = f.event(
            EventType.CMD_RESULT,
            {"cmd_id": cmd_id, "name": "apply_update", "ok": True, "message": "applied",
             "details": {"outcome": "applied"}},
        )
        _send_and_settle(gw, pub, applied, "accepted")
        _send_and_settle(gw, pub, cmd_ok, "accepted")
        first = _device(gw, bundle_id, dev)
        assert (first["status"], first["outcome"]) == ("ok", "applied")

        rolled = f.event(EventType.UPDATE_RESULT, _result(bundle_id, "rolled_back", ROLLBACK_MSG, cmd_id))
        _send_and_settle(gw, pub, rolled, "accepted")
        d = _device(gw, bundle_id, dev)
        assert (d["status"], d["outcome"], d["message"]) == ("failed", "rolled_back", ROLLBACK_MSG)
        cmd = gw.ops.get(f"/api/v1/commands/{cmd_id}").json()  # what the fleet page polls
        assert cmd["status"] == "failed"
        assert cmd["result"]["outcome"] == "rolled_back" and cmd["result"]["message"] == ROLLBACK_MSG
        assert cmd["result"]["event"]["seq"] == rolled.seq

        # the same applied event again (same event_id): counted as a duplicate, changes nothing
        _send_and_settle(gw, pub, applied, "duplicates")
        _send_and_settle(gw, pub, cmd_ok, "duplicates")
        # an older result under a new event_id (resend order): stored, but it does not settle again
        older = applied.model_copy(update={"event_id": str(uuid.uuid4())})
        _send_and_settle(gw, pub, older, "accepted")
        d = _device(gw, bundle_id, dev)
        assert (d["status"], d["outcome"], d["message"]) == ("failed", "rolled_back", ROLLBACK_MSG)
        settled_by = gw.ops.get(f"/api/v1/commands/{cmd_id}").json()["result"]["event"]
        assert settled_by["event_id"] == rolled.event_id
    finally:
        pub.close()


def test_rollback_arriving_before_applied_still_wins(mosquitto, gateway_factory, tmp_path: Path) -> None:
    gw = gateway_factory(mosquitto.url)
    bundle_id, cmds = _rollout(gw, tmp_path)
    dev = DEVICES[1]
    cmd_id = cmds[dev]
    f = EventFactory(dev, OFFICE, 2)
    applied = f.event(EventType.UPDATE_RESULT, _result(bundle_id, "applied", "applied", cmd_id))
    rolled = f.event(EventType.UPDATE_RESULT, _result(bundle_id, "rolled_back", ROLLBACK_MSG, cmd_id))
    pub = Publisher(mosquitto.port)
    try:
        _send_and_settle(gw, pub, rolled, "accepted")  # the later one arrives first (outbox resend order)
        assert _device(gw, bundle_id, dev)["outcome"] == "rolled_back"
        _send_and_settle(gw, pub, applied, "accepted")
        d = _device(gw, bundle_id, dev)
        assert (d["status"], d["outcome"], d["message"]) == ("failed", "rolled_back", ROLLBACK_MSG)
        other = _device(gw, bundle_id, DEVICES[0])
        assert (other["status"], other["outcome"]) == ("sent", None)  # not touched by another device's cmd
    finally:
        pub.close()
