"""A period report as a PDF an office would file (reportlab).

Layout of a Vietnamese administrative report: the issuing body on the left and the national motto
(quốc hiệu "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM / Độc lập - Tự do - Hạnh phúc") on the right, place
and date, the title and period, then numbered sections with tables and a chart, and the signature
block. Every figure is taken from the report dict (``gateway.reports.data``), formatted by
``gateway.reports.fmt``.

The text needs a TrueType font with Vietnamese glyphs: DejaVu Sans from the Debian package
``fonts-dejavu-core`` (scripts/system-packages.sh), found at run time; ``FontMissing`` names the
package when it is absent (the built-in PDF fonts have no Vietnamese letters).
"""

from __future__ import annotations

import io
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from gateway.reports import fmt

FONT_ENV = "MOTCUA_REPORT_FONT_DIR"
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/local/share/fonts/truetype/dejavu")
FONT, FONT_BOLD, FONT_ITALIC = "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique"


class FontMissing(RuntimeError):
    """No TrueType font with Vietnamese glyphs: the PDF cannot be written."""


def register_fonts() -> None:
    """Register DejaVu Sans (regular, bold, oblique) once; raise ``FontMissing`` naming the package."""
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    dirs = [os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else list(FONT_DIRS)
    for d in dirs:
        files = {name: Path(d) / f"{name}.ttf" for name in (FONT, FONT_BOLD, FONT_ITALIC)}
        if all(p.is_file() for p in files.values()):
            for name, path in files.items():
                pdfmetrics.registerFont(TTFont(name, str(path)))
            pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT_ITALIC)
            return
    raise FontMissing(
        "Không tìm thấy phông chữ DejaVu Sans để in tiếng Việt (font missing): install the Debian package "
        f"fonts-dejavu-core (scripts/system-packages.sh) or set {FONT_ENV} to a folder holding "
        f"{FONT}.ttf, {FONT_BOLD}.ttf and {FONT_ITALIC}.ttf; looked in {', '.join(dirs)}"
    )


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=FONT, fontSize=10, leading=13)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8.5, leading=11),
        "center": ParagraphStyle("center", parent=base, alignment=TA_CENTER),
        "center_b": ParagraphStyle("center_b", parent=base, alignment=TA_CENTER, fontName=FONT_BOLD),
        "center_i": ParagraphStyle("center_i", parent=base, alignment=TA_CENTER, fontName=FONT_ITALIC),
        "title": ParagraphStyle("title", parent=base, alignment=TA_CENTER, fontName=FONT_BOLD, fontSize=14,
                                leading=18, spaceBefore=8),
        "h": ParagraphStyle("h", parent=base, fontName=FONT_BOLD, fontSize=11, spaceBefore=10, spaceAfter=4),
    }


def _table(rows: list[list[Any]], widths: list[float], header_rows: int = 1) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=header_rows)
    t.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), FONT, 8.5),
        ("FONT", (0, 0), (-1, header_rows - 1), FONT_BOLD, 8.5),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#e8eef5")),
        ("ALIGN", (1, header_rows), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    return t


def _heading(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    scope = report["scope"]
    body = scope.get("province_name") or "UBND TỈNH"
    unit = scope["name"].upper()
    today = datetime.fromisoformat(report["generated_at"])
    place = scope.get("place") or scope.get("unit_name") or ""
    left = [Paragraph(body.upper(), st["center"]), Paragraph(f"<b>{_esc(unit)}</b>", st["center"]),
            Paragraph("Số: ....../BC-BPMC", st["center"])]
    right = [Paragraph("<b>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</b>", st["center"]),
             Paragraph("<b><u>Độc lập - Tự do - Hạnh phúc</u></b>", st["center"]),
             Paragraph(f"<i>{_esc(place)}, ngày {today.day:02d} tháng {today.month:02d} năm {today.year}</i>",
                       st["center"])]
    head = Table([[left, right]], colWidths=[75 * mm, 100 * mm])
    head.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    period = report["period"]
    start = datetime.fromisoformat(period["start"]).strftime("%d/%m/%Y")
    end = datetime.fromisoformat(period["end"]).strftime("%d/%m/%Y")
    return [head, Spacer(1, 6 * mm), Paragraph("BÁO CÁO", st["title"]),
            Paragraph("Kết quả thời gian chờ và mức độ hài lòng của người dân, tổ chức "
                      f"tại {_esc(scope['name'])}", st["center_b"]),
            Paragraph(f"Kỳ báo cáo: {period['label_vi']} (từ ngày {start} đến ngày {end})", st["center_i"]),
            Spacer(1, 4 * mm)]


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _totals(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    t = report["totals"]
    target = fmt.target_minutes(report["wait_target_s"])
    rows = [["Chỉ tiêu", "Kết quả"],
            ["Số lượt khách (lượt)", fmt.count(t["visits"])],
            ["Đã phục vụ (lượt)", fmt.count(t["served"])],
            ["Không có mặt khi gọi (lượt)", fmt.count(t["no_shows"])],
            ["Thời gian chờ trung bình (phút)", fmt.minutes(t["avg_wait_s"])],
            ["Thời gian chờ p90 (phút)", fmt.minutes(t["p90_wait_s"])],
            [f"Tỷ lệ chờ quá {target} phút", fmt.percent(t["over_target_share"])],
            ["Số lượt đánh giá", fmt.count(t["rated"])],
            ["Số lượt “Không hài lòng”", fmt.count(t["not_satisfied"])],
            ["Tỷ lệ hài lòng (theo QĐ 766/QĐ-TTg)", fmt.percent(t["satisfaction_rate"])],
            ["Chỉ số cảm xúc ẩn danh (−1..1, tham khảo)", fmt.score(t["sentiment_score"])]]
    out = [Paragraph("I. KẾT QUẢ CHUNG", st["h"]), _table(rows, [110 * mm, 50 * mm])]
    if report.get("source") == "hub":
        out.append(Paragraph("Số liệu từ luồng dữ liệu tổng hợp ẩn danh theo giờ của xã (tổng hợp tại tỉnh); "
                             "luồng không có số liệu theo quầy, theo cán bộ và lý do.", st["small"]))
    return out


def _style_axes(chart: Any, names: list[str]) -> None:
    """Category labels slanted under the chart, values from 0, in the report's font."""
    chart.categoryAxis.categoryNames = names
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 6
    chart.categoryAxis.labels.angle = 45
    chart.categoryAxis.labels.boxAnchor = "ne"
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0


def _chart(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    series = report["series"]
    if not series:
        return [Paragraph("II. DIỄN BIẾN THEO THỜI GIAN", st["h"]), Paragraph("Chưa có số liệu.", st["base"])]
    labels = [p["label"] for p in series]
    step = max(1, len(labels) // 12)
    shown = [lab if i % step == 0 else "" for i, lab in enumerate(labels)]
    d = Drawing(170 * mm, 62 * mm)
    bars = VerticalBarChart()
    bars.x, bars.y, bars.width, bars.height = 12 * mm, 10 * mm, 70 * mm, 42 * mm
    bars.data = [[p["visits"] or 0 for p in series]]
    bars.bars[0].fillColor = colors.HexColor("#2f6db5")
    _style_axes(bars, shown)
    line = HorizontalLineChart()
    line.x, line.y, line.width, line.height = 98 * mm, 10 * mm, 70 * mm, 42 * mm
    waits = [(p["avg_wait_s"] or 0) / 60 for p in series]
    line.data = [waits, [report["wait_target_s"] / 60] * len(series)]
    line.lines[0].strokeColor = colors.HexColor("#b26a00")
    line.lines[0].strokeWidth = 1.5
    line.lines[1].strokeColor = colors.HexColor("#c0392b")
    line.lines[1].strokeDashArray = (3, 2)
    _style_axes(line, shown)
    d.add(bars)
    d.add(line)
    d.add(String(12 * mm, 56 * mm, "Số lượt khách", fontName=FONT_BOLD, fontSize=8))
    d.add(String(98 * mm, 56 * mm, "Thời gian chờ trung bình (phút); nét đứt: mục tiêu", fontName=FONT_BOLD,
                 fontSize=8))
    return [Paragraph("II. DIỄN BIẾN THEO THỜI GIAN", st["h"]), d]


def _counters(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    rows = [["Quầy", "Lượt khách", "Chờ TB (phút)", "Chờ p90 (phút)", "Quá mục tiêu", "Đánh giá",
             "Hài lòng"]]
    for c in report["counters"]:
        name = f"{c['office_code']} / quầy {c['counter']}" if report["scope"]["kind"] == "unit" else \
            f"Quầy {c['counter']}"
        rows.append([name, fmt.count(c["visits"]), fmt.minutes(c["avg_wait_s"]), fmt.minutes(c["p90_wait_s"]),
                     fmt.percent(c["over_target_share"]), fmt.count(c["rated"]),
                     fmt.percent(c["satisfaction_rate"])])
    widths = [34 * mm, 20 * mm, 22 * mm, 22 * mm, 22 * mm, 18 * mm, 22 * mm]
    return [Paragraph("III. THEO QUẦY", st["h"]), _table(rows, widths)]


def _officers(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    rows = [["Cán bộ", "Phục vụ", "Đánh giá", "Hài lòng", "Khoảng tin cậy 95 %", "Điểm xếp hạng", "Hạng"]]
    for o in report["officers"]:
        if o["enough_data"]:
            interval = f"{fmt.percent(o['ci_low'])} – {fmt.percent(o['ci_high'])}"
            rank = fmt.count(o["rank"])
            sat = fmt.percent(o["satisfaction_rate"])
            shrunk = fmt.percent(o["score"])
        else:
            interval, rank, sat, shrunk = "chưa đủ dữ liệu", fmt.NONE, "chưa đủ dữ liệu", fmt.NONE
        rows.append([o["officer_id"], fmt.count(o["served"]), fmt.count(o["rated"]), sat, interval, shrunk,
                     rank])
    widths = [30 * mm, 17 * mm, 17 * mm, 26 * mm, 38 * mm, 22 * mm, 12 * mm]
    note = (f"Cách xếp hạng: tỷ lệ hài lòng của mỗi cán bộ được kéo về mức chung của đơn vị, kéo càng "
            f"mạnh khi cán bộ càng có ít lượt đánh giá (ước lượng Bayes thực nghiệm), nên người chỉ có "
            f"vài lượt đánh giá không vượt lên nhờ may mắn. Khoảng tin cậy 95 % (Wilson) cho biết độ "
            f"chắc chắn của tỷ lệ. Dưới {report['min_sample']} lượt đánh giá: “chưa đủ dữ liệu”, không "
            "xếp hạng. Lượt bị đánh dấu bất thường không được tính.")
    return [Paragraph("IV. THEO CÁN BỘ", st["h"]), _table(rows, widths), Spacer(1, 2 * mm),
            Paragraph(note, st["small"])]


def _reasons(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    rows = [["Lý do “Không hài lòng”", "Số lượt"]]
    rows += [[fmt.reason(r["reason"]), fmt.count(r["count"])] for r in report["reasons"]]
    if len(rows) == 1:
        rows.append(["Không có", "0"])
    return [Paragraph("V. LÝ DO KHÔNG HÀI LÒNG", st["h"]), _table(rows, [110 * mm, 50 * mm])]


def _forecast(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    fc = report.get("forecast")
    if not fc:
        return []
    rows = [["Ngày", "Lượt khách dự báo", "Số quầy cần (giờ cao điểm)", "Ghi chú"]]
    for d in fc["next_week"]:
        peak = max((h["counters"] or 0 for h in d["hours"]), default=0)
        note = "Ngày lễ" if d["holiday"] else ("Dịp Tết" if d["tet"] else "")
        day = datetime.fromisoformat(d["day"]).strftime("%d/%m/%Y")
        rows.append([day, fmt.count(d["total"]), fmt.count(peak) if fc["staffing"]["service_s"] else fmt.NONE,
                     note])
    acc = fc["accuracy"]
    text = (f"Sai số trên {acc['weeks']} tuần gần nhất khi dự báo lại từ số liệu trước đó: "
            f"MAPE theo ngày {fmt.percent(acc['mape_daily'])}, sai số tuyệt đối trung bình "
            f"{fmt.score(acc['mae_per_hour'])} lượt/giờ. Số quầy: mô hình hàng đợi Erlang C với thời gian "
            "phục vụ trung bình đo được, để thời gian chờ không quá "
            f"{fmt.target_minutes(report['wait_target_s'])} phút.")
    return [Paragraph("VI. DỰ BÁO 7 NGÀY TỚI", st["h"]), _table(rows, [30 * mm, 35 * mm, 50 * mm, 45 * mm]),
            Spacer(1, 2 * mm), Paragraph(text, st["small"])]


def _sentiment(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    """The anonymous expression index per counter beside the button ratings, and how well they agree."""
    a = report["agreement"]
    rows = [["Quầy", "Đánh giá (nút)", "Hài lòng (nút)", "Chỉ số cảm xúc ẩn danh", "Số khoảng đo"]]
    for c in report["counters"]:
        name = f"{c['office_code']} / quầy {c['counter']}" if report["scope"]["kind"] == "unit" else \
            f"Quầy {c['counter']}"
        rows.append([name, fmt.count(c["rated"]), fmt.percent(c["satisfaction_rate"]),
                     fmt.score(c["sentiment_score"]), fmt.count(c["sentiment_windows"])])
    note = ("Chỉ số cảm xúc (−1..1) là chỉ báo ẩn danh, riêng biệt với đánh giá bằng nút: tính trên các "
            f"khoảng đo có ít nhất {a['min_windows']} lượt khách, chỉ ở mức quầy, không bao giờ cho từng "
            f"người dân hay từng cán bộ; một quầy có dưới {a['min_windows']} khoảng đo trong kỳ không được "
            "hiển thị (–). "
            f"Chỉ dùng để tham khảo, không dùng để xếp hạng. Quầy-tuần được so sánh khi có ít nhất "
            f"{a['min_windows']} khoảng đo và {a['min_ratings']} lượt đánh giá.")
    return [Paragraph("VII. CHỈ SỐ CẢM XÚC ẨN DANH SO VỚI ĐÁNH GIÁ BẰNG NÚT", st["h"]),
            _table(rows, [40 * mm, 28 * mm, 28 * mm, 40 * mm, 28 * mm]), Spacer(1, 2 * mm),
            Paragraph(_esc(fmt.agreement_vi(a)), st["base"]), Spacer(1, 1 * mm), Paragraph(note, st["small"])]


def _kinds(report: dict[str, Any], st: dict[str, ParagraphStyle]) -> list[Any]:
    """Waits by ticket kind and service field; appointments: punctuality and no-show rate."""
    rows = [["Loại vé · lĩnh vực", "Vé", "Phục vụ", "Không có mặt", "Chờ TB (phút)", "Chờ p90 (phút)",
             "Đúng hẹn (phút)"]]
    for k in report["by_kind"]:
        rows.append([fmt.kind(k["kind"], k["service_field"]), fmt.count(k["issued"]), fmt.count(k["served"]),
                     fmt.count(k["no_show"]), fmt.minutes(k["mean_wait_s"]), fmt.minutes(k["p90_wait_s"]),
                     fmt.score(k["mean_punctuality_min"])])
    a = report["appointments"]
    text = (f"Lịch hẹn trong kỳ: {fmt.count(a['booked'])} lượt đặt (không tính lượt đã hủy); trong các "
            f"ngày đã qua {fmt.count(a['booked_closed_days'])} lượt đặt, "
            f"{fmt.count(a['redeemed_closed_days'])} vé hẹn được lấy; tỷ lệ không đến "
            f"{fmt.percent(a['no_show_rate'])}. Đúng hẹn: phút lấy vé so với đầu khung giờ hẹn "
            "(âm = đến sớm).")
    return [Paragraph("VIII. THEO LOẠI VÉ VÀ LĨNH VỰC", st["h"]),
            _table(rows, [42 * mm, 16 * mm, 18 * mm, 22 * mm, 22 * mm, 22 * mm, 24 * mm]), Spacer(1, 2 * mm),
            Paragraph(text, st["small"])]


def _signature(st: dict[str, ParagraphStyle]) -> Table:
    left = [Paragraph("<b><i>Nơi nhận:</i></b>", st["small"]), Paragraph("- Lãnh đạo đơn vị;", st["small"]),
            Paragraph("- Lưu: VT, BPMC.", st["small"])]
    right = [Paragraph("<b>NGƯỜI LẬP BÁO CÁO</b>", st["center"]),
             Paragraph("<i>(Ký, ghi rõ họ tên)</i>", st["center"])]
    t = Table([[left, right]], colWidths=[85 * mm, 85 * mm])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return t


def _page_number(canvas: Any, doc: Any) -> None:
    canvas.saveState()
    canvas.setFont(FONT, 8)
    canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"Trang {doc.page}")
    canvas.drawString(15 * mm, 10 * mm, "MotCua Edge: số liệu tổng hợp ẩn danh")
    canvas.restoreState()


def render(report: dict[str, Any]) -> bytes:
    """The report as PDF bytes."""
    register_fonts()
    st = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=18 * mm, title=f"Báo cáo {report['period']['label_vi']}",
                            author="MotCua Edge")
    story = _heading(report, st) + _totals(report, st) + _chart(report, st) + _counters(report, st)
    story += _officers(report, st) + _reasons(report, st) + _forecast(report, st) + _sentiment(report, st)
    story += _kinds(report, st)
    story += [Spacer(1, 8 * mm), KeepTogether(_signature(st))]
    doc.build(story, onFirstPage=_page_number, onLaterPages=_page_number)
    return out.getvalue()
