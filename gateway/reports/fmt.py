"""Numbers and labels as a Vietnamese report writes them (decimal comma, thousands dot).

One place for the PDF; the spreadsheet keeps the raw numbers with a number format instead.
"""

from __future__ import annotations

from typing import Any

NONE = "–"  # no figure (nothing measured): never printed as 0

# The kiosks' reason codes (device/config.py DEFAULT_REASONS); an unknown code is shown as written.
REASONS_VI = {
    "waited_too_long": "Chờ quá lâu",
    "staff_attitude": "Thái độ cán bộ",
    "unclear_guidance": "Hướng dẫn không rõ",
    "too_many_documents": "Yêu cầu nhiều giấy tờ",
    "other": "Lý do khác",
}


def _vi(text: str) -> str:
    """1,234.5 → 1.234,5"""
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def count(value: int | float | None) -> str:
    return NONE if value is None else _vi(f"{round(value):,}")


def minutes(seconds: float | None) -> str:
    return NONE if seconds is None else _vi(f"{seconds / 60:,.1f}")


def target_minutes(seconds: float) -> str:
    """A target as written in a sentence: "20" (whole minutes) or "0,8"."""
    m = seconds / 60
    return str(round(m)) if abs(m - round(m)) < 1e-9 else _vi(f"{m:.1f}")


def percent(share: float | None) -> str:
    return NONE if share is None else _vi(f"{share * 100:.1f}") + " %"


def score(value: float | None) -> str:
    return NONE if value is None else _vi(f"{value:.2f}")


def reason(code: str | None) -> str:
    if not code:
        return "Không ghi lý do"
    return REASONS_VI.get(code, code)


def coefficient(value: float | None) -> str:
    """A correlation coefficient, sign kept: "0,42", "-0,17"."""
    return NONE if value is None else _vi(f"{value:.2f}")


def agreement_vi(a: dict[str, Any]) -> str:
    """The agreement of sentiment and ratings in one Vietnamese sentence (the PDF and the XLSX)."""
    if not a["enough_data"]:
        return (f"Chưa đủ dữ liệu để đánh giá mức độ thống nhất: {a['pairs']} quầy-tuần có cả hai chỉ số "
                f"(cần ít nhất {a['min_pairs']}).")
    level = round(a["confidence"] * 100)
    return (f"Tương quan hạng Spearman giữa tỷ lệ hài lòng (nút bấm) và chỉ số cảm xúc ẩn danh, theo "
            f"quầy-tuần: ρ = {coefficient(a['spearman'])} (khoảng tin cậy {level} %: "
            f"{coefficient(a['spearman_low'])} đến {coefficient(a['spearman_high'])}), "
            f"n = {count(a['pairs'])} quầy-tuần; hệ số Pearson r = {coefficient(a['pearson'])}.")


KINDS_VI = {"walk_in": "Vãng lai", "priority": "Ưu tiên", "appointment": "Hẹn giờ"}


def kind(code: str, field: str | None) -> str:
    """"Hẹn giờ · land": the ticket kind in Vietnamese and the service field as configured."""
    return KINDS_VI.get(code, code) + (f" · {field}" if field else "")
