"""No folder of one machine in the repository: paths are relative to the checkout, or options.

Before, a build venv and the shared data folder of one developer machine were written as absolute
paths in bench/vision/run.py, docs/models.md, models/*.py and the demo registry.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(work|home/[a-z_][\w-]*|root)/")


def test_no_absolute_machine_paths_in_tracked_files() -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    found = []
    for name in files.decode().split("\0"):
        path = REPO / name
        if not name or not path.is_file() or name == Path(__file__).relative_to(REPO).as_posix():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (models, images)
        for no, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{no}: {line.strip()[:100]}")
    assert not found, "\n".join(found)
