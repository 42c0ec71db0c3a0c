"""One verdict format for every rig (simulated kiosk in CI, virtual Pi, real Pi on the bench).

A step is a named callable returning a short detail string; an exception (AssertionError for a
failed check, anything else for a broken rig) is a FAIL with its message. Each step is timed on the
monotonic clock. The table printed at the end is what a bench record or a CI log keeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Verdict:
    title: str
    steps: list[Step] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)  # e.g. boot-to-online seconds

    def run(self, name: str, fn: Callable[[], str], *, say: Callable[[str], None] = print) -> bool:
        say(f"▶ {name} …")
        t0 = time.monotonic()
        try:
            detail, ok = str(fn()), True
        except Exception as exc:  # a step's failure is reported, the next steps still run
            detail, ok = f"{type(exc).__name__}: {exc}", False
        step = Step(name, ok, time.monotonic() - t0, detail)
        self.steps.append(step)
        say(f"{'PASS' if ok else 'FAIL'}  {name} ({step.seconds:.1f} s): {detail}")
        return ok

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def table(self) -> str:
        width = max([len(s.name) for s in self.steps] + [10])
        lines = [f"== {self.title} ==", f"{'step':<{width}}  result  seconds  detail"]
        for s in self.steps:
            mark = "PASS" if s.ok else "FAIL"
            lines.append(f"{s.name:<{width}}  {mark:<6}  {s.seconds:7.1f}  {s.detail[:160]}")
        for k, v in self.figures.items():
            lines.append(f"{k}: {v}")
        failed = sum(not s.ok for s in self.steps)
        lines.append(f"{self.title} " + ("PASSED" if self.passed else f"FAILED ({failed} step(s))"))
        return "\n".join(lines)
