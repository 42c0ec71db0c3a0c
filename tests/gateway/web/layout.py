"""Layout checks run in the page: what a person sees overlapping or cut off.

Shared by the gateway's browser tests and the demo's end-to-end test.
"""

from __future__ import annotations

from typing import Any

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}

# Bounding boxes of the visible permanent office labels and of the office markers, in CSS pixels.
_BOXES = """() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const labels = [...document.querySelectorAll('.leaflet-tooltip.office-label')]
    .filter((e) => getComputedStyle(e).visibility !== 'hidden' && e.getBoundingClientRect().width > 0)
    .map((e) => ({ text: e.textContent, box: box(e) }));
  const markers = [...document.querySelectorAll('path[data-office]')]
    .map((e) => ({ text: e.dataset.office, box: box(e) }));
  return { labels, markers };
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_overlaps(page: Any) -> tuple[list[tuple[str, str]], int]:
    """Pairs (label, label-or-marker) that overlap on screen, and how many labels are shown."""
    got = page.evaluate(_BOXES)
    labels, markers = got["labels"], got["markers"]
    bad = []
    for i, a in enumerate(labels):
        bad += [(a["text"], b["text"]) for b in labels[i + 1:] if _overlap(a["box"], b["box"])]
        bad += [(a["text"], m["text"]) for m in markers if _overlap(a["box"], m["box"])]
    return bad, len(labels)


def horizontal_overflow(page: Any) -> tuple[int, int]:
    """(document scroll width, viewport width): the page fits when the first is <= the second."""
    return tuple(page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]"))
