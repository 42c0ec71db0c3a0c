"""The real gateway app served by uvicorn in a thread (as ``motcua-gateway run`` serves it), with
an operator and an admin bearer token, against a real broker and database on loopback."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import tomli_w
import uvicorn

from gateway.app import create_app
from gateway.auth import sha256_hex
from gateway.config import Settings
from hil.harness.mosquitto import free_port, wait_port
from hil.harness.wait import wait_for
from provisioning.signing import generate_key, load_key, public_raw

OPERATOR_TOKEN = "test-operator-token-0123456789abcdef"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef012"


def process_config(data_dir: Path, port: int, broker_url: str, db_url: str, operator_token: str, *,
                   client_id: str, **sections: dict[str, Any]) -> str:
    """The TOML of a gateway run as a child process by a test or bench (``motcua-gateway run
    --config``): its web port, broker, database and one operator API token (stored as its SHA-256),
    then any further ``sections`` merged in (e.g. ``broker={"shared_group": "g"}``)."""
    doc: dict[str, Any] = {
        "data_dir": str(data_dir), "web": {"port": port},
        "broker": {"url": broker_url, "client_id": client_id}, "database": {"url": db_url},
        "auth": {"secret_key": "b" * 40, "api_tokens": [
            {"name": "harness", "role": "operator", "token_sha256": sha256_hex(operator_token)}]},
    }
    for name, table in sections.items():
        doc.setdefault(name, {}).update(table)
    return tomli_w.dumps(doc)


def gateway_command(config: Path, python: str = sys.executable) -> list[str]:
    """``motcua-gateway run`` of this checkout's code (``python -m gateway.cli``) with ``config``."""
    return [python, "-m", "gateway.cli", "--log-level", "WARNING", "run", "--config", str(config)]


def gateway_settings(tmp: Path, broker_url: str, db_url: str = "", **sections: dict[str, Any]) -> Settings:
    raw: dict[str, Any] = {
        "data_dir": str(tmp / "gw-data"),
        "web": {"port": free_port()},
        "broker": {"url": broker_url},
        "database": {"url": db_url},
        "auth": {
            "secret_key": "x" * 40,
            "api_tokens": [
                {"name": "ops", "role": "operator", "token_sha256": sha256_hex(OPERATOR_TOKEN)},
                {"name": "adm", "role": "admin", "token_sha256": sha256_hex(ADMIN_TOKEN)},
            ],
        },
        "alerts": {"sweep_interval_s": 0.5},
    }
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    return Settings.from_dict(raw, env={})


class RunningGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.port = settings.web.port
        self.base = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                             proxy_headers=False)  # as gateway.cli runs it: [auth] trusted_proxies decides
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.public = httpx.Client(base_url=self.base, timeout=30)
        self.ops = httpx.Client(
            base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        self.admin = httpx.Client(
            base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )

    def start(self) -> RunningGateway:
        self.thread.start()
        wait_port(self.port, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.app.state.ingest.mqtt is not None and self.app.state.ingest.mqtt.connected.is_set():
                return self
            time.sleep(0.05)
        raise TimeoutError("gateway did not connect to the broker")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        for c in (self.public, self.ops, self.admin):
            c.close()

    def stats(self) -> dict[str, Any]:
        r = self.ops.get("/api/v1/stats/ingest")
        r.raise_for_status()
        return r.json()

    # ------------------------------------------------------------------ signed updates, as an operator

    def trust_new_update_key(self, key_file: Path) -> tuple[Any, str]:
        """Create the operator's offline update key at ``key_file`` and trust its public half here;
        returns (private key, public key hex) for signing bundles and for the kiosk's config."""
        generate_key(key_file)
        key = load_key(key_file)
        pub = public_raw(key).hex()
        r = self.admin.post("/api/v1/updates/keys", json={"public_key": pub})
        assert r.status_code == 201, r.text
        return key, pub

    def register_device(self, device_id: str, office: str, counter: int) -> None:
        body = {"device_id": device_id, "office_code": office, "counter": counter}
        r = self.admin.post("/api/v1/devices", json=body)
        assert r.status_code == 201, r.text

    def roll_out(self, bundle_id: str, bundle: bytes, office: str, device_id: str,
                 timeout: float = 300.0) -> dict[str, Any]:
        """Upload a signed bundle, roll it out to ``office`` and wait for ``device_id``'s outcome;
        returns that device's row of ``/api/v1/updates/{id}``."""
        r = self.admin.post("/api/v1/updates", content=bundle)
        assert r.status_code == 201, r.text
        body = {"offices": [office], "base_url": self.base}
        r = self.admin.post(f"/api/v1/updates/{bundle_id}/rollout", json=body)
        assert r.status_code == 202, r.text

        def row() -> dict | None:
            detail = self.ops.get(f"/api/v1/updates/{bundle_id}").json()
            mine = [d for d in detail["rollouts"][0]["devices"] if d["device_id"] == device_id]
            return mine[0] if mine and mine[0]["outcome"] else None

        return wait_for(row, timeout=timeout, what=f"{device_id}'s outcome for {bundle_id}")
