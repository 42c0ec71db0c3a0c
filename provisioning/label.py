"""Printable device label: QR code (device id, office, counter) and the same in large text."""

from __future__ import annotations

import json
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf",
]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def qr_payload(device_id: str, office: str, counter: int) -> str:
    return json.dumps({"motcua": 1, "device_id": device_id, "office": office, "counter": counter},
                      separators=(",", ":"), ensure_ascii=False)


def make_label(device_id: str, office: str, counter: int, out: Path, office_name: str = "") -> Path:
    """A 600x300 px PNG (about 50x25 mm at 300 dpi)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    qr.add_data(qr_payload(device_id, office, counter))
    qr.make(fit=True)
    code = qr.make_image(fill_color="black", back_color="white").get_image().convert("L")
    code = code.resize((260, 260), Image.NEAREST)
    img = Image.new("L", (600, 300), 255)
    img.paste(code, (20, 20))
    d = ImageDraw.Draw(img)
    d.text((300, 30), device_id, font=_font(30), fill=0)
    d.text((300, 90), f"Quầy số {counter}", font=_font(40), fill=0)
    d.text((300, 150), f"Mã đơn vị: {office}", font=_font(24), fill=0)
    if office_name:
        d.text((300, 190), office_name[:28], font=_font(20), fill=0)
    d.text((300, 250), "MotCua Edge", font=_font(18), fill=0)
    out = Path(out)
    img.save(out, format="PNG", dpi=(300, 300))
    return out
