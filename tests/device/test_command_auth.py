"""Commands carry what an outsider cannot guess (issue 8): the gateway signs each CommandRequest,
the kiosk verifies it and refuses unsigned, forged, stale and replayed ones, counting each."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.codec import encode
from contract.payloads import CommandRequest
from contract.topics import cmd_topic
from device.clock import FakeClock
from device.commands import FORGED, REPLAYED, STALE, UNSIGNED, CommandGuard
from gateway.commands import command_key, public_hex, sign_request
from tests.device.kiosk_proc import KioskProc, Watcher, write_config
from tests.gateway.conftest import RunningGateway, gateway_settings, wait_for

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def _req(name: str = "reset_day", issued_at: datetime = T0, **args) -> CommandRequest:
    return CommandRequest(cmd_id=str(uuid.uuid4()), name=name, args=args, issued_at=issued_at)


def _guard(clock: FakeClock, keys: list[str] | None = None) -> CommandGuard:
    return CommandGuard([public_hex(KEY)] if keys is None else keys, 300, clock, "LC-1", "kiosk-1")


def _kind(guard: CommandGuard, req: CommandRequest) -> str | None:
    out = guard.check(req)
    return None if out is None else out[0]


def test_signed_command_runs_once():
    clock = FakeClock(T0)
    g = _guard(clock)
    req = sign_request(_req(confirm="RESET-2026-11-30"), KEY, "LC-1", "kiosk-1")
    assert _kind(g, req) is None
    assert _kind(g, req) == REPLAYED


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: _req(), UNSIGNED),
        (lambda: sign_request(_req(), Ed25519PrivateKey.generate(), "LC-1", "kiosk-1"), FORGED),
        (lambda: sign_request(_req(), KEY, "LC-1", "kiosk-2"), FORGED),  # signed for another kiosk
        (lambda: sign_request(_req(), KEY, "LC-2", "kiosk-1"), FORGED),  # for another office
        (  # args changed after signing
            lambda: sign_request(_req(confirm="x"), KEY, "LC-1", "kiosk-1").model_copy(
                update={"args": {"confirm": "y"}}
            ),
            FORGED,
        ),
        (lambda: sign_request(_req(issued_at=T0 - timedelta(hours=1)), KEY, "LC-1", "kiosk-1"), STALE),
        (lambda: sign_request(_req(issued_at=T0 + timedelta(hours=1)), KEY, "LC-1", "kiosk-1"), STALE),
    ],
)
def test_refusals(make, expected):
    assert _kind(_guard(FakeClock(T0)), make()) == expected


def test_without_a_synchronised_clock_age_is_measured_on_the_monotonic_clock():
    clock = FakeClock(T0)
    clock.synced = False
    g = _guard(clock)
    first = sign_request(_req(issued_at=T0), KEY, "LC-1", "kiosk-1")
    assert _kind(g, first) is None  # nothing to compare with yet
    clock.advance(600)
    old = sign_request(_req(issued_at=T0 + timedelta(seconds=10)), KEY, "LC-1", "kiosk-1")
    assert _kind(g, old) == STALE  # issued 10 s after the first, but 600 s passed since
    fresh = sign_request(_req(issued_at=T0 + timedelta(seconds=590)), KEY, "LC-1", "kiosk-1")
    assert _kind(g, fresh) is None


def test_kiosk_without_keys_refuses_destructive_commands_only():
    g = _guard(FakeClock(T0), keys=[])
    assert _kind(g, _req("reset_day")) == UNSIGNED
    assert _kind(g, _req("camera", state="on")) == UNSIGNED
    assert _kind(g, _req("selftest")) is None


@pytest.fixture
def gateway(tmp_path, mosquitto):
    gw = RunningGateway(gateway_settings(tmp_path / "gw", mosquitto.url)).start()
    yield gw
    gw.stop()


def test_outsider_reset_day_refused_gateway_one_works(tmp_path, mosquitto, gateway):
    """An anonymous client on the broker sends reset_day with the guessable RESET-<day> token: unsigned,
    signed by its own key, and a replay of the gateway's genuine command: all refused and counted, the
    waiting list unchanged. The gateway's own command (REST API → signed) empties it."""
    gw = gateway
    pub = public_hex(command_key(gw.settings.data_dir))
    office, dev = "LC-TEST", "kiosk-cmd"
    w = Watcher(mosquitto.port)
    k = KioskProc(write_config(tmp_path / "k.toml", device_id=dev, office=office,
                               commands={"trusted_keys": [pub]}), mosquitto.url, tmp_path / "d").start()
    try:
        for _ in range(3):
            k.press("ticket")
        day = k.status()["service_day"]
        wait_for(lambda: gw.app.state.store.device(dev), 60, "device known to the gateway")

        def result(cid: str) -> dict:
            def find():
                return next((e["data"] for e in w.events()
                             if e["type"] == "cmd.result" and e["data"]["cmd_id"] == cid), None)
            return wait_for(find, 60, f"cmd.result {cid}")

        topic = cmd_topic(office, dev, "reset_day")
        now = datetime.now(UTC)
        unsigned = _req(issued_at=now, confirm=f"RESET-{day}")
        forged = sign_request(_req(issued_at=now, confirm=f"RESET-{day}"), Ed25519PrivateKey.generate(),
                              office, dev)
        for req in (unsigned, forged):
            w.client.publish(topic, encode(req), qos=1)
        assert result(unsigned.cmd_id)["details"] == {"refused": UNSIGNED}
        assert result(forged.cmd_id)["details"] == {"refused": FORGED}
        assert k.status()["waiting"] == 3

        r = gw.ops.post(f"/api/v1/devices/{dev}/commands",
                        json={"name": "reset_day", "args": {"confirm": f"RESET-{day}"}})
        assert r.status_code == 202, r.text
        cid = r.json()["cmd_id"]
        assert result(cid)["ok"] is True
        assert k.status()["waiting"] == 0
        # The outsider saw the genuine command on the broker and sends it again after new tickets.
        genuine = next(p for t, p, _ in w.messages if t == topic and cid.encode() in p)
        k.press("ticket")
        w.client.publish(topic, genuine, qos=1)
        wait_for(lambda: k.status()["refused"].get(REPLAYED), 60, "replay counted")
        assert k.status()["waiting"] == 1
        assert k.status()["refused"] == {UNSIGNED: 1, FORGED: 1, REPLAYED: 1}
        wait_for(lambda: (w.of_kind("health") or [{}])[-1].get("refused", {}).get(REPLAYED), 30, "health")
        resets = [e for e in w.events() if e["type"] == "queue.reset"]
        assert len({e["event_id"] for e in resets}) == 1  # only the gateway's
    finally:
        k.terminate()
        w.close()


def test_provisioned_kiosk_trusts_the_gateway_command_key(tmp_path):
    """`motcua-provision device new --command-key <hex>` writes it into the kiosk's [commands]."""
    from device.config import load_config
    from provisioning.device import DeviceRequest, kiosk_toml

    pub = public_hex(Ed25519PrivateKey.generate())
    path = tmp_path / "kiosk.toml"
    text = kiosk_toml("kiosk-prov-1", DeviceRequest(office="LC-03390", counter=1, command_keys=[pub]))
    path.write_text(text.replace('ca_file = "ca.crt"\n', "").replace('cert_file = "device.crt"\n', "")
                    .replace('key_file = "device.key"\n', ""))
    cfg = load_config(path)
    assert cfg.commands.trusted_keys == [pub] and cfg.commands.max_age_s == 300
