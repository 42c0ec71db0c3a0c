"""Who may import whom: bench/ and hil/ never import tests/ (they share the harness in hil/harness/);
contract/, the only code shared by kiosk, gateway and provisioning, imports none of them; the kiosk
(device/) never imports the gateway or provisioning, and the gateway never imports device/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "bench": ("tests",),
    "hil": ("tests",),
    "contract": ("device", "gateway", "provisioning", "tests", "hil", "bench", "demo"),
    "device": ("gateway", "provisioning", "tests", "hil", "bench", "demo"),
    "gateway": ("device", "provisioning", "tests", "hil", "bench", "demo"),
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Top-level packages ``path`` imports (at any depth: function-local imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {(a.name.split(".")[0], node.lineno) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("top", sorted(FORBIDDEN))
def test_no_import_against_the_layering(top: str) -> None:
    bad = [
        f"{p.relative_to(REPO)}:{line} imports {pkg}"
        for p in sorted((REPO / top).rglob("*.py"))
        for pkg, line in imported_packages(p)
        if pkg in FORBIDDEN[top]
    ]
    assert not bad, "\n".join(bad)


def test_the_check_sees_an_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from tests.support.wait import wait_for\n")
    assert ("tests", 2) in imported_packages(f)
