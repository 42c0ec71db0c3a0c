"""The public booking page ``/dat-lich`` (forms, no JavaScript needed) and its JSON API.

Pages: ``GET /dat-lich`` (choose office → field → day → slot; each choice is a GET so the page
works on any phone and with the back button), ``POST /dat-lich`` (book; 303 to the code page),
``GET /dat-lich/ma/{code}`` (code, QR, details, cancel button), ``POST /dat-lich/huy`` (cancel).
API: ``GET /api/v1/booking/offices``, ``GET /api/v1/booking/slots``, ``POST /api/v1/booking``,
``DELETE /api/v1/booking/{code}``. Refusals: 404/409/422/429 with a message, never a 500.

Cross-site requests (``Sec-Fetch-Site: cross-site``, which every current browser sends) may open the
pages, but not book, cancel or look up a code from another site's form, image or script (403,
nothing spent): otherwise any web page could make its visitors' browsers book an office's slots,
each from its own address (past the per-client budget), or spend a visitor's budget on wrong codes.
A link to a code page (a top-level navigation) still opens it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from gateway.booking.qr import qr_svg
from gateway.booking.service import BookingRefused, BookingService, Choice, parse_day
from gateway.web.routes import SECURITY_HEADERS

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter()
WEEKDAYS = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"]


def get_booking(request: Request) -> BookingService:
    return request.app.state.booking


Booking = Annotated[BookingService, Depends(get_booking)]


def _client(request: Request) -> str:
    return request.app.state.auth.client_of(request)


def _refuse_cross_site(request: Request, navigation_ok: bool = False) -> None:
    """403 for a request another site made a browser send (a form, image or script)."""
    if request.headers.get("sec-fetch-site") != "cross-site":
        return
    if navigation_ok and request.headers.get("sec-fetch-mode") == "navigate" and request.method == "GET":
        return
    raise BookingRefused(403, "Yêu cầu từ trang web khác không được chấp nhận; vui lòng dùng trang đặt lịch "
                              "(cross-site request refused)")


def _office_names(request: Request, svc: BookingService) -> dict[str, str]:
    store = request.app.state.store
    names = {}
    for code in svc.settings.offices if svc.settings.enabled else ():
        o = store.office(code)
        names[code] = o["name"] if o else code
    return names


def _page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    return templates.TemplateResponse(request, name, ctx, status_code=status, headers=SECURITY_HEADERS)


@router.get("/dat-lich/static/booking.css", include_in_schema=False)
def css() -> FileResponse:
    return FileResponse(HERE / "static" / "booking.css", media_type="text/css")


def _form_ctx(request: Request, svc: BookingService, office: str, field: str, day: str,
              error: str | None = None) -> tuple[dict[str, Any], int]:
    """The page's choices so far; a wrong choice shows its message (status) and what is still valid."""
    ctx: dict[str, Any] = {"offices": _office_names(request, svc), "office": office, "field": field,
                           "day": day, "settings": svc.settings, "error": error, "weekdays": WEEKDAYS}
    try:
        if office:
            ctx["fields"] = svc.office(office).fields
            ctx["days"] = svc.days(office)
        if office and field and day:
            ctx["slots"] = svc.slots(office, field, parse_day(day))
    except BookingRefused as exc:
        ctx["error"] = error or exc.message
        return ctx, exc.status
    return ctx, 200


@router.get("/dat-lich", response_class=HTMLResponse, tags=["booking"])
def page(request: Request, svc: Booking, office: str = "", field: str = "", day: str = "") -> Response:
    ctx, status = _form_ctx(request, svc, office[:32], field[:32], day[:10])
    return _page(request, "booking.html", ctx, status)


def _phone(raw: str | None) -> str | None:
    raw = (raw or "").replace(" ", "").replace(".", "")
    return raw or None


@router.post("/dat-lich", tags=["booking"])
def book_form(request: Request, svc: Booking, office: Annotated[str, Form(max_length=32)],
              field: Annotated[str, Form(max_length=32)], day: Annotated[str, Form(max_length=10)],
              slot: Annotated[str, Form(max_length=5)], phone: Annotated[str, Form(max_length=20)] = "",
              consent: Annotated[str, Form(max_length=10)] = "") -> Response:
    try:
        _refuse_cross_site(request)
        if _phone(phone) and consent != "yes":
            raise BookingRefused(422, "Cần đồng ý mục đích sử dụng số điện thoại, hoặc để trống "
                                      "(consent needed for the phone number, or leave it empty)")
        code = svc.book(Choice(office, field, parse_day(day), slot, _phone(phone)), _client(request))
    except BookingRefused as exc:
        ctx, _ = _form_ctx(request, svc, office, field, day, exc.message)
        return _page(request, "booking.html", ctx, exc.status)
    return RedirectResponse(f"/dat-lich/ma/{code}", status_code=303)


@router.get("/dat-lich/ma/{code}", response_class=HTMLResponse, tags=["booking"])
def code_page(request: Request, svc: Booking, code: str) -> Response:
    try:
        _refuse_cross_site(request, navigation_ok=True)
        b = svc.lookup(code, _client(request))
    except BookingRefused as exc:
        return _page(request, "booking_code.html", {"error": exc.message, "b": None}, exc.status)
    office = svc.settings.offices.get(b.office_code)
    return _page(request, "booking_code.html", {
        "error": None, "b": b, "qr": qr_svg(b.code), "office_name": _office_names(request, svc).get(
            b.office_code, b.office_code), "field_name": office.fields.get(b.service_field) if office else "",
        "weekday": WEEKDAYS[parse_day(b.day).weekday()], "day_vn": parse_day(b.day).strftime("%d/%m/%Y")})


@router.post("/dat-lich/huy", response_class=HTMLResponse, tags=["booking"])
def cancel_form(request: Request, svc: Booking, code: Annotated[str, Form(max_length=16)]) -> Response:
    try:
        _refuse_cross_site(request)
        b = svc.cancel(code, _client(request))
    except BookingRefused as exc:
        return _page(request, "booking_code.html", {"error": exc.message, "b": None}, exc.status)
    return _page(request, "booking_code.html", {"error": None, "b": b, "cancelled": True})


# ---------------------------------------------------------------------- JSON API


class BookingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    office: str = Field(max_length=32)
    service_field: str = Field(max_length=32)
    day: str = Field(max_length=10)
    slot: str = Field(max_length=5)
    phone: str | None = Field(default=None, max_length=20)
    phone_consent: bool = False


def _refused(exc: BookingRefused) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)


@router.get("/api/v1/booking/offices", tags=["booking"])
def api_offices(request: Request, svc: Booking) -> list[dict[str, Any]]:
    names = _office_names(request, svc)
    return [{"code": code, "name": names[code], "fields": o.fields, "slot_minutes": o.slot_minutes,
             "capacity": o.capacity, "days": [d.isoformat() for d in svc.days(code)]}
            for code, o in svc.settings.offices.items() if svc.settings.enabled]


@router.get("/api/v1/booking/slots", tags=["booking"])
def api_slots(svc: Booking, office: str, service_field: str, day: str) -> Any:
    try:
        return svc.slots(office, service_field, parse_day(day))
    except BookingRefused as exc:
        return _refused(exc)


@router.post("/api/v1/booking", status_code=201, tags=["booking"])
def api_book(request: Request, svc: Booking, body: BookingRequest) -> Any:
    try:
        _refuse_cross_site(request)
        phone = _phone(body.phone)
        if phone and not body.phone_consent:
            raise BookingRefused(422, "phone_consent must be true when a phone number is given")
        code = svc.book(Choice(body.office, body.service_field, parse_day(body.day), body.slot, phone),
                        _client(request))
    except BookingRefused as exc:
        return _refused(exc)
    return {"code": code, "office": body.office, "service_field": body.service_field, "day": body.day,
            "slot": body.slot, "page": f"/dat-lich/ma/{code}"}


@router.delete("/api/v1/booking/{code}", tags=["booking"])
def api_cancel(request: Request, svc: Booking, code: str) -> Any:
    try:
        _refuse_cross_site(request)
        b = svc.cancel(code[:16], _client(request))
    except BookingRefused as exc:
        return _refused(exc)
    return {"code": b.code, "cancelled": True}


def install(app: Any, settings: Any, store: Any, tz: Any) -> Any:
    """Mount the booking page and API on ``app``; returns the pusher (started in the lifespan)."""
    from gateway.booking.limits import ClientBudget
    from gateway.booking.push import BookingPusher
    from gateway.booking.service import now_in

    svc = BookingService(settings.booking, store.engine, now_in(tz),
                         ClientBudget(settings.booking.per_client_per_hour))
    app.state.booking = svc
    app.include_router(router)
    return BookingPusher(app.state, svc)
