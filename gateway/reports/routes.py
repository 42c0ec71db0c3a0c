"""``/reports`` (the page) and the report downloads: JSON, PDF, XLSX of one office or unit and period.

All three read ``gateway.reports.data.build``; access is checked here for every request: signed in
(401, or 303 to the login page), a role that reads reports (403), and the office or unit inside the
principal's scope (403; an office head reads only their offices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.auth import Principal, optional_principal, require_role
from gateway.reports import data, scopes
from gateway.reports.periods import Period, PeriodKind, current
from gateway.web.routes import _page

router = APIRouter()
SIGNED_IN = require_role("viewer")
ScopeKind = Annotated[str, "office | unit"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def reader(principal: Annotated[Principal, Depends(SIGNED_IN)]) -> Principal:
    """Signed in with a role that reads reports (office_head, province, operator, admin)."""
    if principal.report_scope == frozenset():
        raise HTTPException(403, f"role {principal.role!r} does not read reports "
                                 "(office_head, province, operator or admin do)")
    return principal


Reader = Annotated[Principal, Depends(reader)]


def _scope(request: Request, principal: Principal, kind: str, code: str) -> scopes.Scope:
    if kind not in ("office", "unit"):
        raise HTTPException(404, f"no report kind {kind!r} (office or unit)")
    scope = scopes.find(request.app.state.store, kind, code)
    if scope is None:
        raise HTTPException(404, f"{kind} {code!r} not found")
    if not principal.reads_reports_of(scope.offices):
        raise HTTPException(403, f"{principal.name!r} does not read the reports of {kind} {code!r}")
    return scope


def _period(request: Request, period: PeriodKind, year: int | None, index: int) -> Period:
    today = request.app.state.kpi.today()
    if year is None:
        return current(period, today)
    if year > today.year + 1:
        raise HTTPException(422, f"year={year}: after next year")
    try:
        return Period(period, year, index if period != "year" else 1)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@dataclass(frozen=True)
class PeriodParams:
    """``?period=month|quarter|year&year=2026&index=3`` (no year: the current period)."""

    period: Annotated[PeriodKind, Query(description="month | quarter | year")] = "quarter"
    year: Annotated[int | None, Query(ge=2000, le=9998, description="default: the current period")] = None
    index: Annotated[int, Query(ge=1, le=12, description="month 1-12 or quarter 1-4")] = 1


Params = Annotated[PeriodParams, Depends()]


async def _report(request: Request, principal: Principal, kind: str, code: str,
                  p: PeriodParams) -> dict[str, Any]:
    scope = _scope(request, principal, kind, code)
    chosen = _period(request, p.period, p.year, p.index)
    return await run_in_threadpool(data.build, request, scope, chosen)


@router.get("/api/v1/reports/{kind}/{code}", tags=["reports"])
async def report_json(request: Request, principal: Reader, kind: ScopeKind, code: str, p: Params) -> Any:
    """The report of an office or unit for a month, quarter or year: the figures of the period API
    plus names, the forecast (offices) and the ranking's minimum sample."""
    return await _report(request, principal, kind, code, p)


def _download(body: bytes, media_type: str, report: dict[str, Any], ext: str) -> Response:
    name = f"bao-cao-{report['scope']['kind']}-{report['scope']['code']}-{report['period']['slug']}.{ext}"
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/api/v1/reports/{kind}/{code}/pdf", tags=["reports"], response_class=Response)
async def report_pdf(request: Request, principal: Reader, kind: ScopeKind, code: str, p: Params) -> Response:
    """The report as a PDF to file (503 naming the package when the Vietnamese font is missing)."""
    from gateway.reports import pdf  # reportlab: loaded on the first download, not at every start

    report = await _report(request, principal, kind, code, p)
    try:
        body = await run_in_threadpool(pdf.render, report)
    except pdf.FontMissing as exc:
        raise HTTPException(503, str(exc)) from None
    return _download(body, "application/pdf", report, "pdf")


@router.get("/api/v1/reports/{kind}/{code}/xlsx", tags=["reports"], response_class=Response)
async def report_xlsx(request: Request, principal: Reader, kind: ScopeKind, code: str, p: Params) -> Response:
    """The report as a spreadsheet (one sheet per table of the PDF)."""
    from gateway.reports import xlsx  # openpyxl: loaded on the first download, not at every start

    report = await _report(request, principal, kind, code, p)
    body = await run_in_threadpool(xlsx.render, report)
    return _download(body, XLSX_TYPE, report, "xlsx")


@router.get("/reports", include_in_schema=False)
def reports_page(request: Request) -> Response:
    """Signed-in report readers; anonymous → the login page; other roles → a readable 403 page."""
    principal = optional_principal(request)
    if principal is None:
        return RedirectResponse("/login?next=/reports", status_code=303)
    if principal.report_scope == frozenset():
        return _page(request, "forbidden.html", status=403, page="reports", principal=principal,
                     need="office_head / province")
    today = request.app.state.kpi.today()
    choices = scopes.readable(request.app.state.store, principal)
    return _page(request, "reports.html", page="reports", principal=principal, choices=choices,
                 this_year=today.year, this_month=today.month, this_quarter=(today.month - 1) // 3 + 1)
