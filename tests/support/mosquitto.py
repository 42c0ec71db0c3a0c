"""For the tests: re-exports hil/harness/mosquitto.py (one harness for tests, bench and hil)."""

from hil.harness.mosquitto import (  # noqa: F401
    MOSQUITTO,
    PRODUCTION_LOG,
    Mosquitto,
    free_port,
    wait_port,
)
