"""``tune_gc`` (gateway/gc_tuning.py): the gateway process's collector set once at start, in a child
interpreter (it is process-wide: never called inside the test process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import gc, weakref
from gateway.gc_tuning import GC_GEN0_THRESHOLD, tune_gc
before = gc.get_threshold()
tune_gc()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()  # the start-up objects are frozen
assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *before[1:]), gc.get_threshold()
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a  # a reference cycle made after start-up is still collected
gone = weakref.ref(a)
del a, b
gc.collect()
assert gone() is None
print("ok")
"""


def test_tune_gc_freezes_start_up_and_still_collects_cycles() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

