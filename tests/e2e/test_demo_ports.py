"""``make demo`` restarted within a minute keeps its ports (README: the map on :8000).

The demo's free-port probe used to bind without SO_REUSEADDR, so a port whose last connection was in
TIME_WAIT looked taken and the gateway and displays moved to random ports, while uvicorn (which
binds with SO_REUSEADDR) could have used it.
"""

from __future__ import annotations

import socket

from demo.run import free_port


def port_in_time_wait() -> int:
    """A loopback port with a server-side connection in TIME_WAIT and nothing listening on it, as a
    stopped demo leaves it (the listener, like uvicorn's and the broker's, had SO_REUSEADDR)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the server closes first: its end (local port = port) goes to TIME_WAIT
        client.recv(1)  # sees the FIN
        client.close()
    return port


def test_port_in_time_wait_is_reused() -> None:
    port = port_in_time_wait()
    with socket.socket() as plain:  # the state the old probe tripped on
        try:
            plain.bind(("127.0.0.1", port))
            plain_bind_failed = False
        except OSError:
            plain_bind_failed = True
    assert plain_bind_failed, "no TIME_WAIT reproduced: the test would prove nothing"
    assert free_port(port) == port


def test_port_in_use_is_not_reported_free() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert free_port(port) != port
