"""For the tests: re-exports hil/harness/wait.py (one harness for tests, bench and hil)."""

from hil.harness.wait import (  # noqa: F401
    wait_for,
)
