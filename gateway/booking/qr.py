"""The appointment's QR as inline SVG (qrcode package, vector output: sharp on any phone, no image
file, nothing fetched). The QR holds only the code, prefixed so a kiosk knows what it reads."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg

QR_PREFIX = "MOTCUA-HEN:"


def qr_payload(code: str) -> str:
    return QR_PREFIX + code


def qr_svg(code: str) -> str:
    img = qrcode.make(qr_payload(code), image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)
    buf = io.BytesIO()
    img.save(buf)
    text = buf.getvalue().decode()
    return text[text.index("<svg"):]  # inline: without the XML declaration
