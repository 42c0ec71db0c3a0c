"""Report periods: a month, a quarter or a year, as dates and as an office would write them.

A period is closed on both ends (``start`` .. ``end``, local service days). Its series is by day for
a month, by week for a quarter and by month for a year: enough points for a trend, few enough to read.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Literal

PeriodKind = Literal["month", "quarter", "year"]
SERIES_BY: dict[str, str] = {"month": "day", "quarter": "week", "year": "month"}
ROMAN = ("I", "II", "III", "IV")
FIRST_YEAR = 2000


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    year: int
    index: int  # month 1-12, quarter 1-4, 1 for a year

    def __post_init__(self) -> None:
        top = {"month": 12, "quarter": 4, "year": 1}.get(self.kind)
        if top is None:
            raise ValueError(f"period must be month, quarter or year, got {self.kind!r}")
        if not FIRST_YEAR <= self.year <= 9998:
            raise ValueError(f"year must be between {FIRST_YEAR} and 9998, got {self.year}")
        if not 1 <= self.index <= top:
            raise ValueError(f"{self.kind} number must be between 1 and {top}, got {self.index}")

    @property
    def start(self) -> date:
        first_month = {"month": self.index, "quarter": 3 * self.index - 2, "year": 1}[self.kind]
        return date(self.year, first_month, 1)

    @property
    def end(self) -> date:
        last_month = {"month": self.index, "quarter": 3 * self.index, "year": 12}[self.kind]
        return date(self.year, last_month, calendar.monthrange(self.year, last_month)[1])

    @property
    def by(self) -> str:
        return SERIES_BY[self.kind]

    @property
    def label_vi(self) -> str:
        if self.kind == "month":
            return f"Tháng {self.index} năm {self.year}"
        if self.kind == "quarter":
            return f"Quý {ROMAN[self.index - 1]} năm {self.year}"
        return f"Năm {self.year}"

    @property
    def label_en(self) -> str:
        if self.kind == "month":
            return f"{calendar.month_name[self.index]} {self.year}"
        if self.kind == "quarter":
            return f"Q{self.index} {self.year}"
        return f"Year {self.year}"

    @property
    def slug(self) -> str:
        return {"month": f"{self.year}-{self.index:02d}", "quarter": f"{self.year}-Q{self.index}",
                "year": f"{self.year}"}[self.kind]

    def as_dict(self) -> dict[str, str | int]:
        return {"kind": self.kind, "year": self.year, "index": self.index, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "by": self.by, "label_vi": self.label_vi,
                "label_en": self.label_en}


def current(kind: PeriodKind, today: date) -> Period:
    """The period of ``kind`` that contains ``today``."""
    index = {"month": today.month, "quarter": (today.month - 1) // 3 + 1, "year": 1}[kind]
    return Period(kind, today.year, index)
