"""Privacy: the pipeline writes no file anywhere it could, and emits only k-anonymous aggregates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contract.payloads import SentimentWindow

REPO = Path(__file__).resolve().parents[2]
FRAMES = Path(__file__).resolve().parent / "data"  # the committed frame, outside every watched root
WINDOW_KEYS = set(SentimentWindow.model_fields)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _check_emitted(out: dict, visits: int, k: int) -> None:
    assert out["frames"] >= 3 * visits, out  # the pipeline really ran on every visit
    if visits < k:  # the window really closed, with every visit counted, and was carried unpublished
        assert out["emitted"] == [] and out["carried"] == 1 and out["pending_visits"] == visits, out
        return
    assert out["carried"] == 0, out
    assert len(out["emitted"]) == 1
    ev = out["emitted"][0]
    assert ev["type"] == "sentiment.window"
    assert set(ev["data"]) == WINDOW_KEYS  # aggregate fields only: nothing per visit or per frame
    w = SentimentWindow.model_validate(ev["data"])
    assert w.visits == visits >= w.k == k


@pytest.mark.parametrize("visits", [6, 4])
def test_no_file_written_in_cwd_home_tmpdir(tmp_path, visits):
    root = tmp_path / "root"
    for d in ("cwd", "home", "tmp", "cache"):
        (root / d).mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "TMP", "TEMP", "HOME"))}
    env.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"), XDG_CACHE_HOME=str(root / "cache"),
               PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    models_before = _tree_state(REPO / "models")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.vision.privacy_runner", "--frames", str(FRAMES),
         "--visits", str(visits)],
        cwd=root / "cwd", env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    _check_emitted(json.loads(proc.stdout), visits, k=5)
    assert _files(root) == []
    assert _tree_state(REPO / "models") == models_before


def _unshare_prefix() -> tuple[list[str] | None, str]:
    """The command that gives a private mount namespace: plain as root, else inside a user namespace
    (unprivileged users may mount tmpfs there). None, with the reason, where the kernel forbids both."""
    if shutil.which("unshare") is None:
        return None, "needs util-linux unshare"
    base = ["unshare", "--mount", "--propagation", "private"]
    cmd = base if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", *base[1:]]
    probe = subprocess.run([*cmd, "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    if probe.returncode != 0:
        err = probe.stderr.decode().strip()
        return None, f"private tmpfs mounts not permitted here ({' '.join(cmd)}): {err}"
    return cmd, ""


WATCHED = ("/tmp", "/var/tmp", "/dev/shm")


def _remap(path: Path) -> str:
    """Where ``path`` is seen inside the namespace: the original /tmp etc. stay reachable under /mnt
    (a CI clone or venv may live in /tmp, which the fresh tmpfs would hide)."""
    p = str(Path(path).absolute())
    for root in WATCHED:
        if p == root or p.startswith(root + "/"):
            return f"/mnt/orig{root.replace('/', '_')}{p[len(root):]}"
    return p


def test_no_file_written_on_fresh_tmpfs_roots():
    """In a private mount namespace /tmp, /var/tmp and /dev/shm are fresh tmpfs: after a full run
    with visits and a published window, they must still be empty."""
    prefix, reason = _unshare_prefix()
    if prefix is None:  # only a kernel/container that forbids mount namespaces to everyone gets here
        pytest.skip(reason)
    binds = "\n".join(
        f"mkdir /mnt/orig{r.replace('/', '_')} && mount --bind {r} /mnt/orig{r.replace('/', '_')}"
        for r in WATCHED
    )
    python = _remap(Path(sys.executable))
    script = f"""
set -e
mount -t tmpfs -o size=1m tmpfs /mnt
{binds}
for d in {" ".join(WATCHED)}; do mount -t tmpfs -o size=64m tmpfs "$d"; done
mkdir /tmp/home /tmp/cwd
cd /tmp/cwd
HOME=/tmp/home TMPDIR=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONPATH={_remap(REPO)} \\
  {python} -m tests.vision.privacy_runner --frames {_remap(FRAMES)} --visits 6 \\
  > /tmp/run.out 2>/tmp/run.err || cat /tmp/run.err >&2
echo "---RUN---"
cat /tmp/run.out
echo "---FILES---"
find /tmp /var/tmp /dev/shm -mindepth 1 ! -path /tmp/home ! -path /tmp/cwd \\
  ! -path /tmp/run.out ! -path /tmp/run.err
"""
    proc = subprocess.run([*prefix, "sh", "-c", script],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run, files = proc.stdout.split("---RUN---\n", 1)[1].split("---FILES---\n", 1)
    assert run.strip(), proc.stderr
    _check_emitted(json.loads(run), 6, k=5)
    assert files.split() == [], f"files written: {files}"
