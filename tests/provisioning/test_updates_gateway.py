"""Updates through the real gateway: upload (verified), staged rollout over a real Mosquitto, kiosks
fetching the bundle over HTTP, and their update.result events visible in the gateway's API."""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from contract.codec import decode, encode
from contract.payloads import EventType
from contract.topics import cmd_filter, events_topic
from device.updates import handle_apply_update
from device.updates.apply import active_slot
from provisioning.signing import generate_key, load_key, pack, public_raw, sign_bundle
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory


class SimKiosk:
    """The kiosk's apply_update path with real MQTT and HTTP; hardware and the rest are absent."""

    def __init__(self, broker_port: int, device_id: str, office: str, counter: int, data_dir: Path,
                 keys: list[bytes], healthy: bool) -> None:
        self.device_id, self.office, self.data_dir, self.keys, self.healthy = (
            device_id, office, data_dir, keys, healthy)
        self.factory = EventFactory(device_id, office, counter)
        self.commands: list[str] = []
        self.results: list[dict] = []
        self.done = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()
        sub = threading.Event()
        self.client.on_subscribe = lambda *a, **k: sub.set()
        self.client.subscribe(cmd_filter(office, device_id), qos=1)
        assert sub.wait(30)

    def _on_message(self, client, userdata, msg) -> None:
        req = decode(msg.topic, msg.payload).message
        self.commands.append(req.name.value)
        threading.Thread(target=self._apply, args=(req,), daemon=True).start()

    def _apply(self, req) -> None:
        data = handle_apply_update(dict(req.args), data_dir=self.data_dir, trusted_keys=self.keys,
                                   health_check=lambda: self.healthy, office_code=self.office,
                                   cmd_id=req.cmd_id)
        self.results.append(data)
        ev = self.factory.event(EventType.UPDATE_RESULT, data)
        self.client.publish(events_topic(self.office, self.device_id), encode(ev), qos=1).wait_for_publish(30)
        self.done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_upload_rollout_and_outcomes_visible_in_gateway(gateway, mosquitto, tmp_path: Path) -> None:
    gw = gateway
    generate_key(tmp_path / "offline.key")
    key = load_key(tmp_path / "offline.key")
    pub = public_raw(key)
    src = tmp_path / "src"
    (src / "config").mkdir(parents=True)
    (src / "config/kiosk.toml").write_text("[rating]\nscale = 5\n")
    bundle_id, bundle = sign_bundle(key, src, "2.0.0", offices=["03390"])

    assert gw.admin.post("/api/v1/updates", content=bundle).status_code == 422  # no trusted key yet
    assert gw.ops.post("/api/v1/updates/keys", json={"public_key": pub.hex()}).status_code == 403
    assert gw.admin.post("/api/v1/updates/keys", json={"public_key": pub.hex()}).status_code == 201
    assert gw.ops.post("/api/v1/updates", content=bundle).status_code == 403
    with tarfile.open(fileobj=io.BytesIO(bundle)) as t:
        m = {x.name: t.extractfile(x).read() for x in t}
    files = {k[6:]: v for k, v in m.items() if k.startswith("files/")}
    files["config/kiosk.toml"] = b"[rating]\nscale = 3\n"
    r = gw.admin.post("/api/v1/updates", content=pack(m["manifest.json"], m["manifest.sig"], files))
    assert r.status_code == 422 and "sha256" in r.json()["detail"]
    r = gw.admin.post("/api/v1/updates", content=bundle, headers={"Content-Type": "application/x-tar"})
    assert r.status_code == 201, r.text
    assert r.json()["bundle_id"] == bundle_id and r.json()["offices"] == ["03390"]
    assert gw.admin.post("/api/v1/updates", content=bundle).status_code == 200  # idempotent
    assert [b["bundle_id"] for b in gw.ops.get("/api/v1/updates").json()] == [bundle_id]
    dl = gw.public.get(f"/api/v1/updates/{bundle_id}/bundle.tar")
    assert dl.status_code == 200 and dl.content == bundle
    assert gw.public.get("/api/v1/updates/b-0000000000000000/bundle.tar").status_code == 404

    kiosks = {}
    for dev, office, counter, healthy in (("k-03390-01", "03390", 1, True), ("k-03390-02", "03390", 2, False),
                                          ("k-03405-01", "03405", 1, True)):
        body = {"device_id": dev, "office_code": office, "counter": counter}
        assert gw.admin.post("/api/v1/devices", json=body).status_code == 201
        kiosks[dev] = SimKiosk(mosquitto.port, dev, office, counter, tmp_path / dev, [pub], healthy)
    try:
        r = gw.admin.post(f"/api/v1/updates/{bundle_id}/rollout", json={"offices": ["03405"]})
        assert r.status_code == 422 and "not targeted" in r.json()["detail"]
        stage = {"offices": ["03390"]}
        assert gw.ops.post(f"/api/v1/updates/{bundle_id}/rollout", json=stage).status_code == 403
        r = gw.admin.post(f"/api/v1/updates/{bundle_id}/rollout", json=stage)
        assert r.status_code == 202, r.text
        in_office = sorted(d["device_id"] for d in gw.ops.get("/api/v1/devices").json()
                           if d["office_code"] == "03390" and d["registered"])
        assert sorted(d["device_id"] for d in r.json()["devices"]) == in_office
        assert {"k-03390-01", "k-03390-02"} <= set(in_office)

        def outcomes() -> dict | None:
            d = gw.ops.get(f"/api/v1/updates/{bundle_id}").json()
            by_dev = {x["device_id"]: x for x in d["rollouts"][0]["devices"]}
            mine = [by_dev[k]["outcome"] for k in ("k-03390-01", "k-03390-02")]
            return by_dev if all(mine) else None

        by_dev = wait_for(outcomes, timeout=90.0)
        assert by_dev["k-03390-01"]["outcome"] == "applied" and by_dev["k-03390-01"]["status"] == "ok"
        assert by_dev["k-03390-02"]["outcome"] == "rolled_back" and by_dev["k-03390-02"]["status"] == "failed"
        assert "health check failed" in by_dev["k-03390-02"]["message"]
        cmd = gw.ops.get(f"/api/v1/commands/{by_dev['k-03390-01']['cmd_id']}").json()
        assert cmd["result"]["type"] == "update.result" and cmd["result"]["bundle_id"] == bundle_id
        assert active_slot(tmp_path / "k-03390-01") == "A"
        assert (tmp_path / "k-03390-01/current/config/kiosk.toml").read_text() == "[rating]\nscale = 5\n"
        assert active_slot(tmp_path / "k-03390-02") is None  # rolled back to the factory install
        assert kiosks["k-03405-01"].commands == []  # the next stage's office got nothing yet
    finally:
        for k in kiosks.values():
            k.close()
