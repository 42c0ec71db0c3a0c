"""For the tests: re-exports hil/harness/attacks.py (one harness for tests, bench and hil)."""

from hil.harness.attacks import (  # noqa: F401
    ADVERSARY,
    ATTACKS,
    Attack,
    baseline,
    good_event,
)
