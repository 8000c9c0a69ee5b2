"""The regulator report's files: one self-contained HTML page, a CSV per table, one XLSX.

Rendering only: each function returns text or bytes, and the caller writes them (into a
temporary directory renamed into place, so a failed run leaves no half-written report).
Charts label the five categories in English as well as Chinese because the SVG is drawn with
the fonts matplotlib ships, which have no CJK glyphs; the tables keep the Chinese names.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from typing import Any

from matplotlib.figure import Figure
from openpyxl import Workbook  # type: ignore[import-untyped]

from lendstack.reporting import Page, bar_chart, histogram, line_chart
from lendstack.risk.regulator import RegulatorReport, Table
from lendstack.risk.regulator_analytics import TITLE as ANALYTICS

_CLASS_LABELS = {
    "normal": "normal", "special_mention": "special mention", "substandard": "substandard",
    "doubtful": "doubtful", "loss": "loss",
}  # fmt: skip


def cell_text(value: object) -> str:
    """A CSV cell: empty for None, lower-case booleans, full precision for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def table_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([cell_text(row.get(c)) for c in table.columns])
    return buffer.getvalue()


def workbook_bytes(report: RegulatorReport) -> bytes:
    """Every table as a sheet (named after its CSV), the summary first."""
    book = Workbook(write_only=True)
    stamp = datetime.combine(report.period.month_end, datetime.min.time())
    book.properties.created = stamp
    book.properties.modified = stamp
    summary = book.create_sheet("summary")
    summary.append(["item", "value"])
    for key, value in report.summary.items():
        summary.append([key, cell_text(value)])
    for table in report.tables():
        sheet = book.create_sheet(table.name[:31])
        sheet.append(list(table.columns))
        for row in table.rows:
            sheet.append([_xlsx_value(row.get(c)) for c in table.columns])
    buffer = io.BytesIO()
    book.save(buffer)
    return _fixed_zip_times(buffer.getvalue(), stamp)


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _fixed_zip_times(data: bytes, stamp: datetime) -> bytes:
    """The workbook re-zipped with every entry, and its modified time, at `stamp`: openpyxl
    stamps both with the wall clock, and the same month must give the same bytes."""
    out = io.BytesIO()
    when = (stamp.year, stamp.month, stamp.day, 0, 0, 0)
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=when)
            entry.compress_type = zipfile.ZIP_DEFLATED
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _MODIFIED.sub(f"\\g<1>{stamp:%Y-%m-%dT%H:%M:%SZ}\\g<2>".encode(), content)
            dst.writestr(entry, content)
    return out.getvalue()


def _xlsx_value(value: object) -> object:
    """Numbers stay numbers (counts, ratios); money strings stay text so no digit is lost."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def render_html(report: RegulatorReport) -> str:
    month = report.period.month.strftime("%Y-%m")
    page = Page(f"Regulator report {month}")
    page.paragraph(
        f"Month-end {report.period.month_end.isoformat()}, {report.period.closed_days} closed "
        f"business dates in the month; rule pack {report.pack}. Money in CNY, exact to the fen."
    )
    page.heading("Summary")
    page.table([{"item": k, "value": cell_text(v)} for k, v in report.summary.items()])
    charts = _charts(report.charts)
    for section in report.sections:
        page.heading(section.title)
        for text in section.text:
            page.paragraph(text)
        figures = charts.get(section.title, [])
        if figures:
            page.charts(figures)
        for table in section.tables:
            page.heading(table.title, level=3)
            if table.note:
                page.paragraph(table.note)
            if table.rows:
                page.table(list(table.rows), list(table.columns))
            else:
                page.paragraph("None.")
    return page.render()


def _charts(data: dict[str, Any]) -> dict[str, list[Figure]]:
    """The figures of each section, by section title."""
    out: dict[str, list[Figure]] = {}
    if data.get("product"):
        out["Balances and originations"] = [
            bar_chart(data["product"], "Balance by product", ylabel="CNY", horizontal=True),
            bar_chart(data["lender_type"], "Balance by lender type", ylabel="CNY"),
            bar_chart(data["province"], "Balance by province", xlabel="CNY", horizontal=True),
        ]
    apr = data.get("apr")
    if apr is not None and len(apr):
        out["APR distribution"] = [
            histogram(apr, "All-in APR of loans on the books", "APR", bins=48)
        ]
    concentration = [
        bar_chart(data["tier1_used"], "Used of the 25 % tier-1 limit", ylabel="share of limit"),
        bar_chart(data["total_loans_used"], "Used of the 50 % total-loans limit",
                  ylabel="share of limit"),
    ] if data.get("tier1_used") else []  # fmt: skip
    if concentration:
        out["Co-lending shares and concentration"] = concentration
    if data.get("classes"):
        labels = {_CLASS_LABELS.get(k, k): v for k, v in data["classes"].items()}
        out["Five-category classification and NPL ratio"] = [
            bar_chart(labels, "Balance by five-category class", ylabel="CNY")
        ]
    if data.get("vintages"):
        out[ANALYTICS] = [
            line_chart(data["vintages"], "Cumulative share at 30+ DPD by cohort",
                       "months on book", "share of the cohort's loans")
        ]  # fmt: skip
    if data.get("stages"):
        out["Provision coverage and ECL by stage"] = [
            bar_chart(data["stages"], "ECL allowance by stage", ylabel="CNY")
        ]
    return out


def render_files(report: RegulatorReport) -> dict[str, bytes]:
    """File name -> content for the whole report directory."""
    files = {"report.html": render_html(report).encode("utf-8")}
    for table in report.tables():
        files[f"{table.name}.csv"] = table_csv(table).encode("utf-8")
    month = report.period.month.strftime("%Y-%m")
    files[f"regulator-{month}.xlsx"] = workbook_bytes(report)
    return files
