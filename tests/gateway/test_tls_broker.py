"""The gateway against a Mosquitto that requires TLS and a password (password from the environment)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import encode
from contract.topics import events_topic
from gateway.config import Settings
from tests.gateway.conftest import RunningGateway, gateway_settings, wait_for
from tests.gateway.kiosk_sim import EventFactory
from tests.support.mosquitto import Mosquitto, free_port


def _cert(
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    issuer: x509.Name | None = None,
    ca: bool = False,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return key, b.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, key: ec.EllipticCurvePrivateKey | None, cert: x509.Certificate) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    for p in path.parent.iterdir():
        os.chmod(p, 0o644)


@pytest.mark.skipif(
    not shutil.which("mosquitto_passwd"), reason="mosquitto_passwd missing (mosquitto-clients)"
)
def test_gateway_over_tls_with_password(tmp_path: Path) -> None:
    # not under tmp_path: /tmp/pytest-of-root is 0700 and Mosquitto runs as user "mosquitto"
    work = Path(tempfile.mkdtemp(prefix="motcua-tls-"))
    os.chmod(work, 0o777)
    ca_key, ca = _cert("motcua-test-ca", ca=True)
    srv_key, srv = _cert("127.0.0.1", ca_key, ca.subject)
    _write(work / "ca", None, ca)
    _write(work / "server", srv_key, srv)
    pw = work / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "gateway", "s3cret-gw"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "kiosk", "s3cret-k"], check=True)
    os.chmod(pw, 0o644)
    port = free_port()
    listener = (
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
        f"cafile {work / 'ca.crt'}\ncertfile {work / 'server.crt'}\nkeyfile {work / 'server.key'}\n"
    )
    broker = Mosquitto(port=port, workdir=work, listener_conf=listener).start()
    gw = None
    try:
        raw = gateway_settings(tmp_path, f"mqtts://127.0.0.1:{port}")
        s = Settings.from_dict(
            {
                "data_dir": str(raw.data_dir),
                "web": {"port": raw.web.port},
                "broker": {
                    "url": f"mqtts://127.0.0.1:{port}",
                    "ca_file": str(work / "ca.crt"),
                    "username": "gateway",
                },
                "auth": raw.auth,
            },
            env={"MOTCUA_BROKER_PASSWORD": "s3cret-gw"},
        )
        assert s.broker.password == "s3cret-gw"
        gw = RunningGateway(s).start()  # waits until the gateway is connected and subscribed
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-kiosk")
        c.tls_set_context(ssl.create_default_context(cafile=str(work / "ca.crt")))
        c.username_pw_set("kiosk", "s3cret-k")
        c.connect("127.0.0.1", port)
        c.loop_start()
        f = EventFactory("k03390-q3", "03390", 3)
        day = gw.app.state.kpi.today()
        for e in f.visit(1, day, dt.datetime.now(dt.UTC), 42.0, 10.0):
            c.publish(events_topic(e.office_code, e.device_id), encode(e), qos=1).wait_for_publish(30)
        c.disconnect()
        c.loop_stop()
        wait_for(lambda: gw.stats()["accepted"] == 3, what="events over TLS stored")
    finally:
        if gw:
            gw.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
