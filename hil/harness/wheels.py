"""Kiosk wheels built from this checkout, at a chosen version, optionally broken on purpose."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "data", "__pycache__", "*.egg-info",
                                ".pytest_cache", "tests", "bench", "docs")


def kiosk_wheel(version: str, out: Path, *, broken: str | None = None) -> Path:
    """``motcua_edge-<version>-py3-none-any.whl`` in ``out``. ``broken``: a message the new code's
    ``device`` package raises at import (a release that must fail its health check)."""
    src = out / f"src-{version}"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(REPO, src, ignore=IGNORE)
    py = src / "pyproject.toml"
    py.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', py.read_text()))
    init = src / "device" / "__init__.py"
    text = re.sub(r'(?m)^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text())
    if broken:
        text += f"\nraise RuntimeError({broken!r})\n"
    init.write_text(text)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(out), str(src)], check=True, capture_output=True, timeout=600)
    shutil.rmtree(src)
    return out / f"motcua_edge-{version}-py3-none-any.whl"
