"""For the tests: re-exports hil/harness/kiosk_sim.py (one harness for tests, bench and hil)."""

from hil.harness.kiosk_sim import (  # noqa: F401
    BOOT,
    EventFactory,
    Publisher,
)
