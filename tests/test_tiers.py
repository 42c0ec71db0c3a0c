"""The fast tier's slow list names real tests (a renamed test would silently fall into the fast tier),
and the marker is registered (``--strict-markers`` would refuse an unknown one)."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO, SLOW


def test_slow_entries_name_real_modules_and_tests() -> None:
    for entry, reason in SLOW.items():
        path, _, func = entry.partition("::")
        assert (REPO / path).is_file(), entry
        assert not func or f"def {func}(" in (REPO / path).read_text(encoding="utf-8"), entry
        assert reason.strip(), entry


def test_slow_marker_is_registered() -> None:
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)
