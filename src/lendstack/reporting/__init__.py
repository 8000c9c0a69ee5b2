"""Shared report toolkit: self-contained HTML pages with inline SVG charts and escaped tables.

Used by the model report (scoring), the regulator report (risk) and the simulator report.
"""

from lendstack.reporting.charts import bar_chart, histogram, line_chart
from lendstack.reporting.html import Page, svg, table_html, write_atomic

__all__ = ["Page", "bar_chart", "histogram", "line_chart", "svg", "table_html", "write_atomic"]
