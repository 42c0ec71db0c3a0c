"""The feed over TLS with client certificates, as kiosks connect: the commune pushes as ``lc-a`` (its
certificate's name) under an ACL that lets it write only its own topic, the hub subscribes as ``hub``
(read only). Producer, pusher and subscriber are the gateway's own classes on real stores."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import func, select

from gateway.config import Settings
from gateway.feed import schema as fs
from gateway.feed.config import FeedSettings, HubSettings, UpstreamMqtt
from gateway.feed.hub import HubSubscriber
from gateway.feed.push import MqttPusher
from gateway.registry import load_registry
from gateway.store import Store
from tests.gateway.conftest import wait_for
from tests.gateway.feed.test_https_push import _commune_store
from tests.gateway.test_tls_broker import _cert, _write
from tests.support.mosquitto import Mosquitto, free_port


def test_feed_over_tls_with_client_certificates(tmp_path: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="motcua-feed-tls-"))  # Mosquitto (user mosquitto) must read it
    os.chmod(work, 0o777)
    ca_key, ca = _cert("motcua-province-ca", ca=True)
    for name in ("server", "lc-a", "hub"):
        key, cert = _cert("127.0.0.1" if name == "server" else name, ca_key, ca.subject)
        _write(work / name, key, cert)
    _write(work / "ca", None, ca)
    (work / "acl").write_text("user lc-a\ntopic write motcua-feed/v1/lc-a/#\n"
                              "user hub\ntopic read motcua-feed/v1/#\n")
    os.chmod(work / "acl", 0o644)
    port = free_port()
    listener = (f"listener {port} 127.0.0.1\nallow_anonymous false\ncafile {work / 'ca.crt'}\n"
                f"certfile {work / 'server.crt'}\nkeyfile {work / 'server.key'}\nrequire_certificate true\n"
                f"use_identity_as_username true\nacl_file {work / 'acl'}\n")
    broker = Mosquitto(port=port, workdir=work, listener_conf=listener).start()
    commune = _commune_store(tmp_path / "commune.sqlite3")
    hub_store = Store(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    hub_store.migrate()
    hub_store.load_registry(load_registry(Settings().registry_file))

    def tls(name: str) -> UpstreamMqtt:
        return UpstreamMqtt(url=f"mqtts://127.0.0.1:{port}", ca_file=str(work / "ca.crt"),
                            cert_file=str(work / f"{name}.crt"), key_file=str(work / f"{name}.key"),
                            client_id=name)

    hub = HubSubscriber(hub_store, HubSettings(enabled=True, mqtt=tls("hub"), sources=["lc-a"]))
    pusher = MqttPusher(commune, FeedSettings(enabled=True, source_id="lc-a", mqtt=tls("lc-a")))
    try:
        hub.start()
        wait_for(hub.connected.is_set, what="hub connected over TLS")
        pusher.start()
        wait_for(lambda: pusher.backlog() == 0, what="commune's records acknowledged")
        with commune.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(fs.feed_records)).scalar_one()
        held = select(func.count()).select_from(fs.hub_records)
        with hub_store.engine.connect() as conn:
            wait_for(lambda: conn.execute(held).scalar_one() == count, what="hub stored every record")
        wait_for(lambda: hub.outcomes == {"stored": count}, what=f"{count} stored, nothing else")
    finally:
        pusher.stop()
        hub.stop()
        broker.stop()
        commune.close()
        hub_store.close()
        shutil.rmtree(work, ignore_errors=True)
