"""[device] office_name: printed on the ticket (wrapped to the paper) instead of the bare office code."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from PIL import ImageDraw

from device.printer import TicketInfo, _office_lines, render_ticket

NAME = "Bộ phận Một cửa xã Sin Suối Hồ"  # one of the longer names of the Lai Châu registry


def test_ticket_carries_the_office_name_within_the_paper() -> None:
    plain = TicketInfo("0007", 7, 1, "03394", "2026-11-30", 2, datetime(2026, 11, 30, 9, 0))
    named = TicketInfo("0007", 7, 1, "03394", "2026-11-30", 2, datetime(2026, 11, 30, 9, 0), office_name=NAME)
    lines = [text for text, _font in _office_lines(named)]
    assert " ".join(lines[:-1]) == NAME.upper() and lines[-1] == "Mã đơn vị: 03394"
    assert [text for text, _f in _office_lines(plain)] == ["BỘ PHẬN MỘT CỬA", "Mã đơn vị: 03394"]
    probe = ImageDraw.Draw(render_ticket(plain))
    for text, font in _office_lines(named):
        assert probe.textlength(text, font=font) <= 384, text  # nothing cut at the paper's edge
    a, b = render_ticket(plain), render_ticket(named)
    assert a.width == b.width == 384 and b.height > a.height
    assert not np.array_equal(np.asarray(a)[:60], np.asarray(b)[:60])  # a different heading is printed
