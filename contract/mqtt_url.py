"""Broker URLs and TLS, one way for the kiosk (device/publisher.py), the gateway
(gateway/mqtt_client.py), provisioning and the HIL watcher.

``mqtt://host[:port]`` is plain TCP (default port 1883), ``mqtts://host[:port]`` is TLS (8883);
the gateway also takes paho's historical ``tcp://`` and ``ssl://``. TLS always verifies the broker's
certificate and host name, against ``ca_file`` when given (the project's own CA) or the system's
trust store; a client certificate (``cert_file`` + ``key_file``) is the device identity that
Mosquitto maps to the user name (docs/provisioning.md).

It is in contract/ because that is the only code the kiosk, the gateway and provisioning share.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

TLS_SCHEMES = {"mqtt": False, "mqtts": True, "tcp": False, "ssl": True}
KIOSK_SCHEMES = ("mqtt", "mqtts")
DEFAULT_PORT = {False: 1883, True: 8883}


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str, schemes: tuple[str, ...] = tuple(TLS_SCHEMES)) -> BrokerAddress:
    """Host, port and TLS of a broker URL; ValueError (naming the URL) when it is not one."""
    u = urlparse(url)
    if u.scheme not in schemes or not u.hostname:
        raise ValueError(f"must look like mqtt://host:port or mqtts://host:port, got {url!r}")
    try:
        port = u.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    tls = TLS_SCHEMES[u.scheme]
    return BrokerAddress(u.hostname, port or DEFAULT_PORT[tls], tls)


def tls_context(ca_file: str | None = None, cert_file: str | None = None,
                key_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the broker (certificate and host name), with the client
    certificate loaded when one is given."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file or None)
    return ctx


def configure_client(client: Any, url: str, *, username: str | None = None, password: str | None = None,
                     ca_file: str | None = None, cert_file: str | None = None,
                     key_file: str | None = None) -> BrokerAddress:
    """Set a paho client's credentials and TLS (public API: ``username_pw_set``, ``tls_set_context``)
    for ``url``; returns where to connect."""
    address = parse_broker_url(url)
    if username:
        client.username_pw_set(username, password or None)
    if address.tls:
        client.tls_set_context(tls_context(ca_file, cert_file, key_file))
    return address
