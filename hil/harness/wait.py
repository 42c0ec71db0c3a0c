"""One polling helper for tests, benches and hil: wait for a condition, never for a fixed time.

The machine is shared, so timeouts are generous and the wait ends as soon as the condition holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    cond: Callable[[], Any],
    timeout: float = 60.0,
    what: str = "condition",
    *,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll ``cond`` until it returns something truthy and return that.

    Exceptions of the ``ignore`` types count as "not yet" (e.g. a server still starting); on timeout
    an ``AssertionError`` names ``what`` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except ignore as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
