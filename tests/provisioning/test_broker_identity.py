"""End to end: CA -> device identities -> Mosquitto with the generated TLS config -> ACL by delivery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contract.topics import cmd_topic, events_topic, status_topic
from provisioning.ca import CA, GATEWAY_CN, init_ca
from provisioning.mosquitto_conf import unreadable_by, write_broker_config
from tests.provisioning.conftest import TlsClient
from tests.support.mosquitto import Mosquitto, free_port

OFFICE = "03390"


def _identity(dir_: Path, name: str, key: bytes, cert: bytes) -> tuple[Path, Path]:
    k, c = dir_ / f"{name}.key", dir_ / f"{name}.crt"
    k.write_bytes(key)
    c.write_bytes(cert)
    os.chmod(k, 0o600)
    return c, k


@pytest.fixture
def broker_setup(ca: CA, world_dir: Path, request):
    mode = getattr(request, "param", "pattern")
    a = ca.issue_device(OFFICE, 1)
    b = ca.issue_device(OFFICE, 2)
    gw_key, gw_cert = ca.issue_service(GATEWAY_CN)
    ids = world_dir / "ids"
    ids.mkdir()
    port = free_port()
    files = write_broker_config(ca, world_dir / "broker", port=port, bind="127.0.0.1", acl_mode=mode)
    assert unreadable_by("mosquitto", [files.keyfile, files.acl, files.crlfile]) == []
    broker = Mosquitto(port=port, workdir=world_dir / "run", listener_conf=files.listener_conf).start()
    made: list[TlsClient] = []

    def client(name: str, key: bytes, cert: bytes, client_id: str = "", v5: bool = True) -> TlsClient:
        c, k = _identity(ids, f"{name}-{len(made)}", key, cert)
        cl = TlsClient(port, files.cafile, c, k, client_id, v5=v5)
        made.append(cl)
        return cl

    try:
        yield {"a": a, "b": b, "gw": (gw_key, gw_cert), "client": client, "broker": broker,
               "files": files, "port": port}
    finally:
        for cl in made:
            cl.close()
        broker.stop()


@pytest.mark.parametrize("broker_setup", ["pattern", "registry"], indirect=True)
def test_device_publishes_only_its_own_topics(broker_setup) -> None:
    s = broker_setup
    a, b = s["a"], s["b"]
    gw = s["client"]("gw", *s["gw"])
    assert gw.connect(), s["broker"].log_text()[-2000:]
    gw.subscribe("motcua/v1/#")
    dev_b = s["client"]("b", b.key_pem, b.cert_pem)
    assert dev_b.connect()
    dev_b.subscribe(f"motcua/v1/{OFFICE}/{b.device_id}/cmd/+")
    spoofs = [(events_topic(OFFICE, b.device_id), b"spoof-events"),
              (status_topic(OFFICE, b.device_id), b"spoof-status"),
              (cmd_topic(OFFICE, b.device_id, "selftest"), b"spoof-cmd"),
              (cmd_topic(OFFICE, a.device_id, "selftest"), b"self-cmd")]
    for topic, payload in spoofs:
        # A fresh connection each (the broker drops a denied QoS 1 sender). Device A also claims B's
        # client id (the %c attack): it must stay A and must not take over B's session.
        attacker = s["client"]("a", a.key_pem, a.cert_pem, client_id=b.device_id)
        assert attacker.connect()
        attacker.publish(topic, payload)
        attacker.close()
    assert not dev_b.disconnected.is_set(), "device A's client id took over device B's session"

    dev_a = s["client"]("a", a.key_pem, a.cert_pem)
    assert dev_a.connect()
    dev_a.subscribe(f"motcua/v1/{OFFICE}/{b.device_id}/cmd/+")   # SUBACK granted, delivery filtered
    dev_a.subscribe(f"motcua/v1/{OFFICE}/{a.device_id}/cmd/+")
    assert dev_a.publish(events_topic(OFFICE, a.device_id), b"own-events"), "own publish not acknowledged"
    assert gw.wait_for(b"own-events"), "a device's own event never reached the gateway"
    for _, payload in spoofs:
        assert payload not in gw.payloads(), f"{payload!r} was delivered"
    assert s["broker"].log_text().count("Denied PUBLISH") >= len(spoofs)

    gw.publish(cmd_topic(OFFICE, b.device_id, "selftest"), b"cmd-for-b")
    gw.publish(cmd_topic(OFFICE, a.device_id, "selftest"), b"cmd-for-a")
    assert dev_a.wait_for(b"cmd-for-a"), s["broker"].log_text()[-4000:]
    assert dev_b.wait_for(b"cmd-for-b")
    assert b"cmd-for-b" not in dev_a.payloads(), "device A read device B's commands"
    assert b"spoof-cmd" not in dev_b.payloads()
    assert not dev_b.disconnected.is_set(), "device A's client id took over device B's session"


@pytest.mark.parametrize("broker_setup", ["registry"], indirect=True)
def test_registry_acl_binds_the_office(broker_setup) -> None:
    s = broker_setup
    a = s["a"]
    gw = s["client"]("gw", *s["gw"])
    assert gw.connect()
    gw.subscribe("motcua/v1/#")
    dev_a = s["client"]("a", a.key_pem, a.cert_pem)
    assert dev_a.connect()
    dev_a.publish(events_topic("99999", a.device_id), b"other-office")
    dev_a = s["client"]("a", a.key_pem, a.cert_pem)
    assert dev_a.connect()
    assert dev_a.publish(events_topic(OFFICE, a.device_id), b"own-office")
    assert gw.wait_for(b"own-office")
    assert b"other-office" not in gw.payloads()


def test_revoked_and_foreign_certificates_are_refused(broker_setup, ca: CA, tmp_path: Path) -> None:
    s = broker_setup
    a, b = s["a"], s["b"]
    first = s["client"]("a", a.key_pem, a.cert_pem)
    assert first.connect(), "a valid certificate was refused"
    first.close()

    ca.revoke(a.device_id, "lost")
    b2 = ca.issue_device(OFFICE, 2)  # SD card swap at counter 2: new identity, the old one revoked
    assert b2.revoked == [b.serial] and b2.device_id == b.device_id
    write_broker_config(ca, s["files"].conf.parent, port=s["port"], bind="127.0.0.1")
    s["broker"].stop()
    s["broker"].start()

    assert not s["client"]("a", a.key_pem, a.cert_pem).connect(), "a revoked certificate was accepted"
    assert not s["client"]("b", b.key_pem, b.cert_pem).connect(), "a superseded certificate was accepted"
    assert s["client"]("b2", b2.key_pem, b2.cert_pem).connect(), "the re-provisioned device was refused"
    foreign = init_ca(tmp_path / "foreign").issue_device(OFFICE, 3)
    assert not s["client"]("x", foreign.key_pem, foreign.cert_pem).connect(), "another CA's cert accepted"



def test_crl_distribution_point_mode_still_enforced_by_mosquitto(tmp_path: Path, world_dir: Path) -> None:
    """With --crl-url (for EMQX) certificates carry a CDP and the CRL an IDP; Mosquitto must still
    accept valid certificates and refuse revoked ones."""
    from cryptography import x509

    ca = init_ca(tmp_path / "ca-cdp", crl_url="http://gw.example/crl.pem")
    good, bad = ca.issue_device(OFFICE, 1), ca.issue_device(OFFICE, 2)
    ca.revoke(bad.device_id)
    cert = x509.load_pem_x509_certificate(good.cert_pem)
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://gw.example/crl.pem"
    port = free_port()
    files = write_broker_config(ca, world_dir / "broker", port=port, bind="127.0.0.1")
    broker = Mosquitto(port=port, workdir=world_dir / "run", listener_conf=files.listener_conf).start()
    ids = world_dir / "ids"
    ids.mkdir()
    clients = []
    try:
        for name, issued, ok in (("good", good, True), ("bad", bad, False)):
            c, k = _identity(ids, name, issued.key_pem, issued.cert_pem)
            cl = TlsClient(port, files.cafile, c, k)
            clients.append(cl)
            assert cl.connect() is ok, (name, broker.log_text()[-1500:])
    finally:
        for cl in clients:
            cl.close()
        broker.stop()
