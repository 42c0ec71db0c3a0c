"""Ticket printing via ESC/POS (python-escpos), Vietnamese text rendered to a raster image.

Common thermal-printer code pages print Vietnamese letters as '?', so the whole ticket text is drawn
with Pillow in a font that has Vietnamese glyphs (DejaVu Sans, Debian package fonts-dejavu-core) and
sent as a raster image; the QR code is also raster. When simulated (``kind = "file"``) the exact
ESC/POS bytes go to ``<data-dir>/prints/<day>-<label>.bin`` (plus a PNG preview).
"""

from __future__ import annotations

import logging
import os
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from device.config import PrinterConfig

log = logging.getLogger("motcua.printer")

FONT_DIRS = [
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
]


def _font(size: int, bold: bool = False) -> Any:
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for d in FONT_DIRS:
        if (d / name).is_file():
            return ImageFont.truetype(str(d / name), size)
    log.warning("DejaVu Sans not found (apt install fonts-dejavu-core); Vietnamese may render badly")
    return ImageFont.load_default(size)


@dataclass
class TicketInfo:
    label: str
    ticket_no: int
    counter: int
    office_code: str
    service_day: str
    waiting_ahead: int
    issued_at: datetime  # local time
    office_name: str | None = None  # [device] office_name: printed instead of the bare code
    line: str | None = None  # entrance kiosk of shared lines: the service field's label, not the counter
    where: str | None = None  # ... and which counters call from it (device/entrance.py)


def _office_lines(t: TicketInfo) -> list[tuple[str, Any]]:
    """The office's name (upper case, as a ticket heads it) with its code, or the generic heading."""
    if t.office_name:  # wrapped: 384 dots hold about 24 bold capitals at this size
        names = [(line, _font(22, True)) for line in textwrap.wrap(t.office_name.upper(), 24)]
        return [*names, (f"Mã đơn vị: {t.office_code}", _font(18))]
    return [("BỘ PHẬN MỘT CỬA", _font(26, True)), (f"Mã đơn vị: {t.office_code}", _font(20))]


def _where_lines(t: TicketInfo) -> list[tuple[str, Any]]:
    """The counter, or on a shared line its field and the counters that call from it."""
    if not t.line:
        return [(f"Quầy số {t.counter}", _font(34, True))]
    lines = [(line, _font(30, True)) for line in textwrap.wrap(f"Lĩnh vực: {t.line}", 22)]
    return lines + [(line, _font(20)) for line in textwrap.wrap(t.where or "", 32)]


def render_ticket(t: TicketInfo, width: int = 384) -> Any:
    """The ticket as a 1-bit PIL image, ``width`` dots wide (384 = 58 mm paper at 203 dpi)."""
    from PIL import Image, ImageDraw

    lines: list[tuple[str, Any]] = [
        *_office_lines(t),
        ("SỐ THỨ TỰ CỦA BẠN", _font(24, True)),
        (t.label, _font(110 if len(t.label) <= 5 else 70, True)),
        *_where_lines(t),
        (f"Số người đang chờ trước bạn: {t.waiting_ahead}", _font(20)),
        (t.issued_at.strftime("Lấy số lúc %H:%M, ngày %d/%m/%Y"), _font(20)),
        ("Vui lòng chờ đến khi được gọi số", _font(20)),
    ]
    probe = ImageDraw.Draw(Image.new("1", (1, 1)))
    heights = [probe.textbbox((0, 0), s, font=f)[3] + 12 for s, f in lines]
    img = Image.new("1", (width, sum(heights) + 10), 1)
    draw = ImageDraw.Draw(img)
    y = 5
    for (s, f), h in zip(lines, heights, strict=True):
        w = draw.textlength(s, font=f)
        draw.text((max(0, (width - w) / 2), y), s, font=f, fill=0)
        y += h
    return img


class Printer:
    """Prints tickets; a printer fault is reported (``last_error``) and never blocks the queue."""

    def __init__(self, cfg: PrinterConfig, data_dir: Path) -> None:
        self.cfg, self.dir = cfg, Path(data_dir) / "prints"
        self.last_error: str | None = None
        self.printed = 0
        self._dev: Any = None

    def _device(self) -> Any:
        from escpos import printer as ep

        if self.cfg.kind == "file":
            return ep.Dummy(profile=self.cfg.profile) if self.cfg.profile else ep.Dummy()
        if self._dev is None:
            p = dict(self.cfg.params)
            if self.cfg.kind == "usb":
                self._dev = ep.Usb(p.pop("vendor_id"), p.pop("product_id"), profile=self.cfg.profile, **p)
            else:
                self._dev = ep.Serial(p.pop("devfile"), profile=self.cfg.profile, **p)
        return self._dev

    def qr_text(self, t: TicketInfo) -> str:
        if self.cfg.qr_url:
            return self.cfg.qr_url.format(
                office=t.office_code, counter=t.counter, day=t.service_day, no=t.ticket_no, label=t.label
            )
        return f"MOTCUA|{t.office_code}|{t.counter}|{t.service_day}|{t.ticket_no}"

    def print_ticket(self, t: TicketInfo) -> Path | None:
        """Print; returns the sink file when simulated. Never raises."""
        if self.cfg.kind == "none":
            return None
        try:
            img = render_ticket(t, int(self.cfg.params.get("width_px", 384)))
            dev = self._device()
            media = dev.profile.profile_data.setdefault("media", {}).setdefault("width", {})
            if media.get("pixels", "Unknown") == "Unknown":
                media["pixels"] = img.width  # the profile does not know the paper: use the ticket's width
            dev.image(img)
            dev.qr(self.qr_text(t), size=6, native=False)
            dev.cut()
            self.printed += 1
            if self.cfg.kind == "file":
                return self._write(f"{t.service_day}-{t.label}", dev.output, img)
            return None
        except Exception as exc:  # paper out, USB unplugged, ...: the number is still on screen and spoken
            self.last_error = f"printer: {exc}"[:200]
            log.warning("print failed: %s", exc)
            self._dev = None
            return None

    def _write(self, stem: str, data: bytes, img: Any) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{stem}.bin"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        img.save(self.dir / f"{stem}.png")
        return path

    def test_page(self, issued_at: datetime | None = None) -> tuple[bool, str]:
        """A test ticket stamped ``issued_at`` (the kiosk's local time, as real tickets are)."""
        now = issued_at or datetime.now().astimezone()
        t = TicketInfo("TEST", 1, 1, "SELFTEST", now.date().isoformat(), 0, now)
        path = self.print_ticket(t)
        if self.cfg.kind == "none":
            return False, "printer kind = none"
        if self.cfg.kind == "file":
            ok = path is not None and path.stat().st_size > 100
            return ok, str(path) if ok else (self.last_error or "no output")
        return self.last_error is None, self.last_error or "printed"
