"""tests.support.wait.wait_for: the one polling helper (returns the value, names what timed out)."""

from __future__ import annotations

import itertools

import pytest

from tests.support.wait import wait_for


def test_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 3 and "ready", timeout=10, interval=0.001) == "ready"


def test_ignored_exceptions_mean_not_yet() -> None:
    calls = itertools.count()

    def flaky() -> int:
        if next(calls) < 2:
            raise ConnectionError("still starting")
        return 7

    assert wait_for(flaky, timeout=10, interval=0.001, ignore=(ConnectionError,)) == 7

    def broken() -> int:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):  # not ignored: raised at once
        wait_for(broken, timeout=1)


def test_timeout_names_what_and_last_value() -> None:
    with pytest.raises(AssertionError, match=r"timed out waiting for the queue \(last: 0\)"):
        wait_for(lambda: 0, timeout=0.05, what="the queue", interval=0.01)
