"""The shared HTML report toolkit: self-contained, escaped, deterministic, atomic."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from lendstack.reporting import Page, bar_chart, histogram, line_chart


def _page() -> Page:
    page = Page("Report <1>")
    page.heading("Section & more").paragraph("a < b")
    page.chart(line_chart({"x": [(1, 2.0), (2, 3.0)], "y": [(1, 1.0), (2, 0.5)]}, "lines"))
    page.chart(bar_chart({"Guangdong": 3, "Zhejiang": 1}, "bars", horizontal=True))
    page.chart(histogram({"a": [1.0, 2.0, 2.5], "b": [0.5, 3.0]}, "hist", bins=5))
    page.table([{"name": "<script>", "amount": Decimal("12.30")}, {"name": "b", "extra": 0.125}])
    return page


def test_page_is_self_contained_and_escaped() -> None:
    text = _page().render()
    assert text.startswith("<!doctype html>")
    assert "<title>Report &lt;1&gt;</title>" in text
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "<h2>Section &amp; more</h2>" in text
    assert "<p>a &lt; b</p>" in text
    assert text.count("<svg") == 3
    # nothing fetched: no external URLs other than the SVG/XLink namespaces
    urls = set(re.findall(r"(?:href|src)=\"(https?://[^\"]+)\"", text))
    assert urls == set()
    assert "http://www.w3.org/2000/svg" in text


def test_table_columns_union_in_first_seen_order_and_exact_decimals() -> None:
    text = _page().render()
    header = re.search(r"<table><tr>(.*?)</tr>", text)
    assert header is not None
    assert re.findall(r"<th>(.*?)</th>", header.group(1)) == ["name", "amount", "extra"]
    assert "<td>12.30</td>" in text
    assert "<td>0.125</td>" in text


def test_table_respects_given_columns_and_empty_rows() -> None:
    page = Page("t").table([{"a": 1, "b": 2}], columns=["b"]).table([])
    text = page.render()
    assert "<th>b</th>" in text
    assert "<th>a</th>" not in text
    assert "No rows" in text


def test_render_is_deterministic() -> None:
    assert _page().render() == _page().render()


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("old", encoding="utf-8")
    Page("new").write(out)
    assert "new" in out.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r.html"
    out.write_text("old", encoding="utf-8")

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("lendstack.reporting.html.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        Page("new").write(out)
    assert out.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
