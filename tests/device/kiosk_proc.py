"""For the tests: re-exports hil/harness/kiosk_proc.py (one harness for tests, bench and hil)."""

from hil.harness.kiosk_proc import (  # noqa: F401
    REPO,
    KioskProc,
    Watcher,
    write_config,
)
