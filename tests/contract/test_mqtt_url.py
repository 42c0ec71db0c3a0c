"""One broker-URL and TLS helper for kiosk, gateway, provisioning and HIL (contract/mqtt_url.py)."""

from __future__ import annotations

import ssl

import pytest

from contract.mqtt_url import KIOSK_SCHEMES, BrokerAddress, configure_client, parse_broker_url, tls_context
from provisioning.ca import init_ca


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1", BrokerAddress("127.0.0.1", 1883, False)),
        ("mqtts://broker.local", BrokerAddress("broker.local", 8883, True)),
        ("mqtts://broker.local:9883", BrokerAddress("broker.local", 9883, True)),
        ("tcp://h:1884", BrokerAddress("h", 1884, False)),
        ("ssl://h", BrokerAddress("h", 8883, True)),
    ],
)
def test_parse(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize("url", ["http://h", "mqtt://", "mqtt://h:99999", "mqtt://h:x", "h:1883"])
def test_refused_with_the_url_named(url: str) -> None:
    with pytest.raises(ValueError, match="mqtt://host:port|bad port"):
        parse_broker_url(url)


def test_kiosk_takes_only_mqtt_and_mqtts() -> None:
    with pytest.raises(ValueError):
        parse_broker_url("ssl://h", KIOSK_SCHEMES)


class _Client:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def username_pw_set(self, user: str, password: str | None) -> None:
        self.calls.append(("user", user, password))

    def tls_set_context(self, ctx: ssl.SSLContext) -> None:
        self.calls.append(("tls", ctx))


def test_configure_client_sets_credentials_and_verifying_tls(tmp_path) -> None:
    plain = _Client()
    assert configure_client(plain, "mqtt://h", username="u", password="p").tls is False
    assert plain.calls == [("user", "u", "p")]
    ca = init_ca(tmp_path / "ca")
    device = ca.issue_device("03390", 1)
    cert, key = tmp_path / "d.crt", tmp_path / "d.key"
    cert.write_bytes(device.cert_pem)
    key.write_bytes(device.key_pem)
    secure = _Client()
    address = configure_client(secure, "mqtts://h", ca_file=str(ca.path / "ca.crt"), cert_file=str(cert),
                               key_file=str(key))
    assert address == BrokerAddress("h", 8883, True)
    (kind, ctx), = secure.calls
    assert kind == "tls" and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert tls_context().verify_mode == ssl.CERT_REQUIRED

