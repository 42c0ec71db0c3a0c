"""For the tests: re-exports hil/harness/wheels.py (one harness for tests, bench and hil)."""

from hil.harness.wheels import (  # noqa: F401
    kiosk_wheel,
)
