"""A period report as a spreadsheet (openpyxl): one sheet per table of the PDF.

Cells hold the raw numbers of the report dict (waits in minutes = seconds ÷ 60, shares as fractions
with a percent format) so that an office can compute with them; an absent figure is an empty cell,
never 0. Sheet and column titles are Vietnamese with the English beside them.

No cell is a formula: openpyxl stores a string starting with "=" as one, and names in a report come
from outside (an officer id a kiosk reported, an office name set through the API), so before saving
every such string is marked text (:func:`_texts_only`); the file shows the name, it runs nothing.
Control characters, which a worksheet cannot hold (openpyxl refuses the cell: the whole download
was a 500), are shown as U+FFFD (:func:`_clean`).
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from gateway.reports import fmt

MIN_FMT, PCT_FMT, INT_FMT, SCORE_FMT = "0.0", "0.0%", "#,##0", "0.00"
HEADER_FILL = PatternFill("solid", fgColor="E8EEF5")

# (title, key in the figures, number format, convert)
COLUMNS: list[tuple[str, str, str, Any]] = [
    ("Lượt khách (visits)", "visits", INT_FMT, None),
    ("Chờ TB, phút (avg wait, min)", "avg_wait_s", MIN_FMT, "minutes"),
    ("Chờ p90, phút (p90 wait, min)", "p90_wait_s", MIN_FMT, "minutes"),
    ("Tỷ lệ quá mục tiêu (over target)", "over_target_share", PCT_FMT, None),
    ("Lượt đánh giá (rated)", "rated", INT_FMT, None),
    ("Tỷ lệ hài lòng (satisfaction)", "satisfaction_rate", PCT_FMT, None),
    ("Cảm xúc ẩn danh (sentiment)", "sentiment_score", SCORE_FMT, None),
]


def _value(figures: dict[str, Any], key: str, convert: Any) -> Any:
    v = figures.get(key)
    if v is None:
        return None
    return v / 60 if convert == "minutes" else v


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list[Any]],
           formats: list[str | None]) -> None:
    ws = wb.create_sheet(title)
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        ws.append(_clean(row))
    for i, f in enumerate(formats, start=1):
        ws.column_dimensions[get_column_letter(i)].width = 16 if i > 1 else 30
        if f:
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = f
    ws.freeze_panes = "B2"


def _figure_rows(items: list[dict[str, Any]], first: Any) -> list[list[Any]]:
    return [[first(x), *(_value(x, key, conv) for _t, key, _f, conv in COLUMNS)] for x in items]


TOTALS = [("Lượt khách (visits)", "visits", INT_FMT, None), ("Đã phục vụ (served)", "served", INT_FMT, None),
          ("Không có mặt (no-shows)", "no_shows", INT_FMT, None), *COLUMNS[1:4],
          ("Không hài lòng (not satisfied)", "not_satisfied", INT_FMT, None), *COLUMNS[4:]]


def _summary(wb: Workbook, report: dict[str, Any]) -> None:
    info = wb.active
    info.title = "Tổng hợp"
    scope, period, t = report["scope"], report["period"], report["totals"]
    info.append(_clean(["Báo cáo (report)", f"{scope['name']} ({scope['code']})"]))
    info.append(["Kỳ báo cáo (period)", f"{period['label_vi']} ({period['label_en']})"])
    info.append(["Từ ngày (from)", period["start"]])
    info.append(["Đến ngày (to)", period["end"]])
    info.append(["Mục tiêu chờ, phút (wait target, min)", report["wait_target_s"] / 60])
    info.append([])
    info.append(["Chỉ tiêu (figure)", "Kết quả (value)"])
    for title, key, number_format, conv in TOTALS:
        info.append([title, _value(t, key, conv)])
        info.cell(info.max_row, 2).number_format = number_format
    info.column_dimensions["A"].width = 40
    info.column_dimensions["B"].width = 40
    for row in (1, 2, 7):
        info.cell(row, 1).font = Font(bold=True)


OFFICER_HEADER = ["Cán bộ (officer)", "Phục vụ (served)", "Đánh giá (rated)", "Hài lòng (satisfaction)",
                  "Wilson 95 % thấp (low)", "Wilson 95 % cao (high)", "Điểm xếp hạng (shrunk)", "Hạng (rank)",
                  "Ghi chú (note)"]


def _officer_row(o: dict[str, Any]) -> list[Any]:
    """Below the minimum sample: counts only, the figures left empty and the note says why."""
    ok = o["enough_data"]
    figures = [o[k] if ok else None for k in ("satisfaction_rate", "ci_low", "ci_high", "score", "rank")]
    note = "" if ok else "chưa đủ dữ liệu (not enough data)"
    return [o["officer_id"], o["served"], o["rated"], *figures, note]


def _forecast_rows(fc: dict[str, Any]) -> list[list[Any]]:
    return [[d["day"], h["hour"], h["arrivals"], h["counters"], d["holiday"] or "", "x" if d["tet"] else ""]
            for d in fc["next_week"] for h in d["hours"]]


SENTIMENT_HEADER = ["Quầy (counter)", "Đánh giá (rated)", "Hài lòng (satisfaction)",
                    "Chỉ số cảm xúc ẩn danh (anonymous sentiment, −1..1)", "Số khoảng đo (windows)"]
AGREEMENT_ROWS = [("Quầy-tuần so sánh (counter-weeks)", "pairs", INT_FMT),
                  ("Spearman ρ", "spearman", SCORE_FMT), ("Spearman thấp (low)", "spearman_low", SCORE_FMT),
                  ("Spearman cao (high)", "spearman_high", SCORE_FMT), ("Pearson r", "pearson", SCORE_FMT),
                  ("Pearson thấp (low)", "pearson_low", SCORE_FMT),
                  ("Pearson cao (high)", "pearson_high", SCORE_FMT),
                  ("Độ tin cậy (confidence)", "confidence", PCT_FMT),
                  ("Tối thiểu khoảng đo / quầy-tuần (min windows)", "min_windows", INT_FMT),
                  ("Tối thiểu đánh giá / quầy-tuần (min ratings)", "min_ratings", INT_FMT),
                  ("Tối thiểu quầy-tuần (min pairs)", "min_pairs", INT_FMT)]


def _sentiment(wb: Workbook, report: dict[str, Any]) -> None:
    """Per counter the two indicators side by side, then the agreement (empty cells: not enough data)."""
    rows = [[f"{c['office_code']} / {c['counter']}", c["rated"], c["satisfaction_rate"], c["sentiment_score"],
             c["sentiment_windows"]] for c in report["counters"]]
    _sheet(wb, "Cảm xúc và đánh giá", SENTIMENT_HEADER, rows, [None, INT_FMT, PCT_FMT, SCORE_FMT, INT_FMT])
    ws, a = wb["Cảm xúc và đánh giá"], report["agreement"]
    ws.append([])
    ws.append(["Mức độ thống nhất (agreement)", fmt.agreement_vi(a)])
    ws.cell(ws.max_row, 1).font = Font(bold=True)
    for title, key, number_format in AGREEMENT_ROWS:
        ws.append([title, a[key]])
        ws.cell(ws.max_row, 2).number_format = number_format


KIND_HEADER = ["Loại vé (kind)", "Lĩnh vực (service field)", "Vé (issued)", "Phục vụ (served)",
               "Không có mặt (no-shows)", "Chờ TB, phút (avg wait, min)", "Chờ p90, phút (p90 wait, min)",
               "Tỷ lệ quá mục tiêu (over target)", "Đúng hẹn, phút (punctuality, min)"]


APPOINTMENT_ROWS = [("Lượt đặt hẹn (booked)", "booked", INT_FMT),
                    ("Đặt hẹn, ngày đã qua (booked, days over)", "booked_closed_days", INT_FMT),
                    ("Vé hẹn đã lấy (redeemed)", "redeemed_closed_days", INT_FMT),
                    ("Tỷ lệ không đến (no-show rate)", "no_show_rate", PCT_FMT)]


def _kinds(wb: Workbook, report: dict[str, Any]) -> None:
    rows = [[fmt.KINDS_VI.get(k["kind"], k["kind"]), k["service_field"], k["issued"], k["served"],
             k["no_show"], _value(k, "mean_wait_s", "minutes"), _value(k, "p90_wait_s", "minutes"),
             k["over_target_share"], k["mean_punctuality_min"]] for k in report["by_kind"]]
    _sheet(wb, "Theo loại vé", KIND_HEADER, rows,
           [None, None, INT_FMT, INT_FMT, INT_FMT, MIN_FMT, MIN_FMT, PCT_FMT, MIN_FMT])
    ws, a = wb["Theo loại vé"], report["appointments"]
    ws.append([])
    for title, key, number_format in APPOINTMENT_ROWS:
        ws.append([title, a[key]])
        ws.cell(ws.max_row, 2).number_format = number_format


def render(report: dict[str, Any]) -> bytes:
    wb = Workbook()
    _summary(wb, report)
    header = ["Kỳ (period)", *(c[0] for c in COLUMNS)]
    formats = [None, *(c[2] for c in COLUMNS)]
    _sheet(wb, "Theo thời gian", header, _figure_rows(report["series"], lambda p: p["label"]), formats)
    _sheet(wb, "Theo quầy", ["Quầy (counter)", *header[1:]],
           _figure_rows(report["counters"], lambda c: f"{c['office_code']} / {c['counter']}"), formats)
    _sheet(wb, "Theo cán bộ", OFFICER_HEADER, [_officer_row(o) for o in report["officers"]],
           [None, INT_FMT, INT_FMT, PCT_FMT, PCT_FMT, PCT_FMT, PCT_FMT, INT_FMT, None])
    _sheet(wb, "Lý do không hài lòng", ["Lý do (reason)", "Mã (code)", "Số lượt (count)"],
           [[fmt.reason(r["reason"]), r["reason"] or "", r["count"]] for r in report["reasons"]],
           [None, None, INT_FMT])
    _sentiment(wb, report)
    _kinds(wb, report)
    if report.get("forecast"):
        header = ["Ngày (day)", "Giờ (hour)", "Lượt dự báo (arrivals)", "Số quầy (counters)",
                  "Ngày lễ (holiday)", "Dịp Tết (Tết period)"]
        formats = [None, None, "0.00", INT_FMT, None, None]
        _sheet(wb, "Dự báo", header, _forecast_rows(report["forecast"]), formats)
    _texts_only(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _clean(row: list[Any]) -> list[Any]:
    """Strings from outside (names, officer ids) without the control characters a cell cannot hold."""
    return [ILLEGAL_CHARACTERS_RE.sub("\ufffd", v) if isinstance(v, str) else v for v in row]


def _texts_only(wb: Workbook) -> None:
    """Every string cell is text: one starting with "=" (a formula to openpyxl) is marked a string."""
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
