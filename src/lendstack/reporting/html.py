"""A self-contained HTML page: headings, prose, inline SVG charts and escaped tables.

Reports from lendstack (the model report, the regulator report, the simulator report) are opened
offline, by validators and supervisors, sometimes on an air-gapped laptop. So a page carries
everything inline: charts are matplotlib SVG embedded in the markup, tables are plain HTML, and
nothing is fetched from the network. The output is deterministic (no SVG date, a fixed hash salt)
so that two runs on the same data give byte-identical files that diff cleanly.
"""

from __future__ import annotations

import html
import io
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1em}svg{max-width:100%;height:auto}"""

_HASH_SALT = "lendstack"


def svg(fig: Figure) -> str:
    """The figure as an inline `<svg>` element, reproducible byte for byte; closes the figure."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": _HASH_SALT, "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def cell(value: object) -> str:
    """One table cell as text: exact for Decimal and int, 6 significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def table_columns(rows: Sequence[Mapping[str, object]]) -> list[str]:
    """Every key of every row, in first-seen order (rows need not share one shape)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def table_html(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> str:
    """An escaped HTML table; missing keys render as empty cells."""
    cols = list(columns) if columns is not None else table_columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


class Page:
    """An HTML page built top to bottom; `render()` gives the document, `write()` saves it."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text: str, level: int = 2) -> Page:
        level = min(max(level, 1), 6)
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def paragraph(self, text: str) -> Page:
        self._parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def chart(self, fig: Figure) -> Page:
        """Embed a matplotlib figure as inline SVG (the figure is closed)."""
        self._parts.append(svg(fig))
        return self

    def charts(self, figs: Iterable[Figure]) -> Page:
        """Several figures side by side, wrapping on narrow screens."""
        self._parts.append("<div class=charts>" + "".join(svg(f) for f in figs) + "</div>")
        return self

    def table(
        self, rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None
    ) -> Page:
        """A table of rows (mappings); `columns` picks and orders them, else all keys."""
        if not rows and columns is None:
            self._parts.append("<p><em>No rows.</em></p>")
        else:
            self._parts.append(table_html(rows, columns))
        return self

    def render(self) -> str:
        return (
            "<!doctype html><html><head><meta charset=utf-8>"
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(self._parts)}</body></html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically: a reader sees the old file or the whole new one, never a torn one."""
        target = Path(path)
        write_atomic(target, self.render())
        return target


def write_atomic(target: Path, text: str) -> None:
    """Write `text` to a temp file beside `target`, then `os.replace` it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
