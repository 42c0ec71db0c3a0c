"""Period reports for office heads and the province: the /reports page, PDF and XLSX.

Every figure comes from one function, ``gateway.reports.data.report_data``, which reads the same
store function as the period API (``/api/v1/offices/{code}/period``): the page, the PDF and the
spreadsheet cannot disagree with the API or with each other. Nothing here computes a KPI from raw
rows. Access: ``Principal.reads_reports_of`` (office heads: their offices only).
"""
