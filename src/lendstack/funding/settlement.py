"""Settlement statements: what the platform and one funder owe each other for one business date.

A statement is built from the day's funder flows summed per (loan, flow) and nothing else, so
the same closed date always gives the same statement, byte for byte: rows sorted by loan id,
money as decimal strings with two places, no timestamps. That is what lets a bank re-request a
file and compare checksums instead of contents.

Each line shows the flows a bank recognises, as the positive amounts the sub-ledger holds
(negative only when a reversal outweighs the day's original flow), and the **net**: what the
platform pays the funder (positive) or the funder pays the platform (negative). The net is
computed from `DUE_SIGN`, the one place the sub-ledger says how a flow moves cash, and the
columns are checked to restate it exactly, so a flow kind added to `DUE_SIGN` without a column
fails loudly rather than vanishing from the file.

Columns:
- `disbursed`: the funder's part of new loans (disbursement) and of stakes it acquired; it pays;
- `principal`, `interest` (the funder's own at its yield, after the platform's spread),
  `fees` (fees and penalties), `recoveries`, `sale` (bad-debt sale proceeds),
  `compensation` (guarantee payouts and buybacks): the platform pays;
- `charged_off`: principal written off; a memo, it moves no cash and is not in the net.
The platform's spread is not shown: it is the platform's income, not the funder's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from lendstack.core.errors import InvariantViolation
from lendstack.core.money import from_fen
from lendstack.funding.subledger import DUE_SIGN, Flow

FORMAT = "lendstack-settlement/1"
"""Named in every statement so a reader can tell which layout it holds."""

COLUMNS: tuple[tuple[str, tuple[Flow, ...]], ...] = (
    ("disbursed", (Flow.DISBURSEMENT, Flow.ACQUIRED)),
    ("principal", (Flow.PRINCIPAL,)),
    ("interest", (Flow.INTEREST,)),
    ("fees", (Flow.FEE, Flow.PENALTY)),
    ("recoveries", (Flow.RECOVERY,)),
    ("sale", (Flow.SALE,)),
    ("compensation", (Flow.GUARANTEE, Flow.BUYBACK)),
    ("charged_off", (Flow.CHARGE_OFF,)),
)
"""Statement columns and the flows each sums, in file order."""

COLUMN_SIGN: dict[str, int] = {"disbursed": -1, "charged_off": 0}
"""How a column enters the net (1 unless listed): the funder pays for what it disburses."""

CSV_HEADER = ("business_date", "funder_id", "loan_id", "flows",
              *(name for name, _ in COLUMNS), "net")  # fmt: skip

_COLUMN_OF: dict[Flow, str] = {flow: name for name, flows in COLUMNS for flow in flows}


@dataclass(frozen=True, slots=True)
class FlowSum:
    """One (funder, loan, flow) of a business date: the sum of its parts and how many."""

    funder_id: str
    loan_id: int
    flow: Flow
    fen: int
    count: int


class _Columns:
    """Look an amount up by column name (`COLUMNS` order) on a line or the totals."""

    __slots__ = ()
    amounts: tuple[int, ...]

    def amount(self, column: str) -> int:
        return self.amounts[_index(column)]


@dataclass(frozen=True, slots=True)
class Line(_Columns):
    """One loan's settlement for the day; amounts in fen, in `COLUMNS` order."""

    loan_id: int
    flows: int
    amounts: tuple[int, ...]
    net: int


@dataclass(frozen=True, slots=True)
class Totals(_Columns):
    """A statement's column sums over its loans."""

    loans: int
    flows: int
    amounts: tuple[int, ...]
    net: int


@dataclass(frozen=True, slots=True)
class Statement:
    """One funder's settlement for one business date, with totals and checksum."""

    business_date: date
    funder_id: str
    lines: tuple[Line, ...]
    closing_position: int
    """The funder's principal position over all its loans at the end of the day (fen)."""

    @property
    def totals(self) -> Totals:
        amounts = tuple(sum(col) for col in zip(*(ln.amounts for ln in self.lines), strict=True))
        return Totals(
            len(self.lines),
            sum(ln.flows for ln in self.lines),
            amounts or (0,) * len(COLUMNS),
            sum(ln.net for ln in self.lines),
        )

    @property
    def net(self) -> int:
        return self.totals.net

    def body(self) -> dict[str, Any]:
        """The statement as JSON values, without its checksum."""
        totals = self.totals
        return {
            "format": FORMAT,
            "business_date": self.business_date.isoformat(),
            "funder_id": self.funder_id,
            "currency": "CNY",
            "loans": [{"loan_id": ln.loan_id, **_money_fields(ln)} for ln in self.lines],
            "totals": {"loans": totals.loans, **_money_fields(totals)},
            "closing_position": _money(self.closing_position),
        }

    @property
    def checksum(self) -> str:
        """sha256 (hex) of the canonical body: sorted keys, no spaces, UTF-8."""
        return hashlib.sha256(canonical(self.body())).hexdigest()

    def content(self) -> dict[str, Any]:
        """What the JSON file holds: the body and its checksum."""
        return {**self.body(), "sha256": self.checksum}

    def json_bytes(self) -> bytes:
        """The JSON file: the content with sorted keys, indented, ending in a newline."""
        text = json.dumps(self.content(), sort_keys=True, indent=2, ensure_ascii=False)
        return (text + "\n").encode("utf-8")

    def csv_bytes(self) -> bytes:
        """The CSV file: a header, one row per loan, then a `total` row; `\\n` line ends."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        day = self.business_date.isoformat()
        rows: list[tuple[str, Line | Totals]] = [(str(ln.loan_id), ln) for ln in self.lines]
        rows.append(("total", self.totals))
        for loan, row in rows:
            money = [_money(v) for v in (*row.amounts, row.net)]
            writer.writerow([day, self.funder_id, loan, str(row.flows), *money])
        return out.getvalue().encode("utf-8")


def canonical(value: Any) -> bytes:
    """The bytes a checksum is taken over: JSON with sorted keys and no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def build_statement(
    business_date: date, funder_id: str, sums: Iterable[FlowSum], closing_position: int = 0
) -> Statement:
    """One funder's statement from its flow sums for the day (other funders' sums refused)."""
    by_loan: dict[int, list[FlowSum]] = defaultdict(list)
    for item in sums:
        if item.funder_id != funder_id:
            raise InvariantViolation(f"flows of {item.funder_id!r} in {funder_id!r}'s statement")
        by_loan[item.loan_id].append(item)
    lines = tuple(_line(loan_id, by_loan[loan_id]) for loan_id in sorted(by_loan))
    return Statement(business_date, funder_id, lines, closing_position)


def build_statements(
    business_date: date, sums: Iterable[FlowSum], positions: Mapping[str, int]
) -> tuple[Statement, ...]:
    """A statement for every funder with flows that day or a position open at its end.

    `positions` are closing positions by funder. A funder whose day was empty but who still
    holds loans gets a nil statement: the file says "nothing is due", where no file at all
    would leave the bank unsure whether the day was settled.
    """
    by_funder: dict[str, list[FlowSum]] = defaultdict(list)
    for item in sums:
        by_funder[item.funder_id].append(item)
    ids = set(by_funder) | {f for f, fen in positions.items() if fen}
    return tuple(
        build_statement(business_date, f, by_funder.get(f, ()), positions.get(f, 0))
        for f in sorted(ids)
    )


def due_of(sums: Iterable[FlowSum]) -> int:
    """Net cash due to the funders over `sums`, straight from `DUE_SIGN` (for reconciliation)."""
    return sum(DUE_SIGN.get(s.flow, 0) * s.fen for s in sums)


def _line(loan_id: int, sums: list[FlowSum]) -> Line:
    amounts = dict.fromkeys((name for name, _ in COLUMNS), 0)
    for item in sums:
        column = _COLUMN_OF.get(item.flow)
        if column is not None:
            amounts[column] += item.fen
        elif DUE_SIGN.get(item.flow, 0):
            raise InvariantViolation(f"flow {item.flow} moves cash but has no statement column")
    net = due_of(sums)
    restated = sum(COLUMN_SIGN.get(name, 1) * fen for name, fen in amounts.items())
    if restated != net:
        raise InvariantViolation(f"loan {loan_id}: columns net {restated} fen, flows {net} fen")
    return Line(loan_id, sum(s.count for s in sums), tuple(amounts.values()), net)


def _money(fen: int) -> str:
    return str(from_fen(fen))


def _money_fields(line: Line | Totals) -> dict[str, Any]:
    fields: dict[str, Any] = {"flows": line.flows}
    fields.update((name, _money(fen)) for (name, _), fen in zip(COLUMNS, line.amounts, strict=True))
    fields["net"] = _money(line.net)
    return fields


def _index(column: str) -> int:
    for i, (name, _) in enumerate(COLUMNS):
        if name == column:
            return i
    raise KeyError(column)


__all__ = [
    "COLUMNS",
    "COLUMN_SIGN",
    "CSV_HEADER",
    "FORMAT",
    "FlowSum",
    "Line",
    "Statement",
    "Totals",
    "build_statement",
    "build_statements",
    "canonical",
    "due_of",
]
