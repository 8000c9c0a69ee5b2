"""`reconcile`, carried from one check to the next: what a simulation runs at every month-end.

`reports.reconcile` sums the whole journal and every funder flow each time it runs, so a run's
month-ends would cost more every month. Both tables are append-only (no code updates or
deletes a journal line or a funder flow: reversals are new rows) and, with one writer, their
ids grow in commit order. So the sums over the rows up to an id stay what they were when
they were read, and a check needs only the rows added since the last one, added to the sums
it carried:

* the trial balance and each bank's GL balances: debit and credit per account and funder;
* unbalanced entries: an entry is checked once its lines are there (they are written in one
  transaction); one found unbalanced is carried, and reported at every later check, as the
  full scan would;
* positions to flows: each position's signed flows, summed as flows arrive; the positions
  themselves are updated in place, so they are compared at every check: every position
  not zero is read. A zero position (a loan paid off, sold or bought back: most of a long
  run's book) can only differ from its flows if those do not sum to zero, so the positions
  whose flows do not and that were not read are looked up: none, on a book that ties;
* banks' flows to the GL: flows of dates up to the last close, per funder and flow; a flow
  of a date after it (the open date) waits until that date is closed.

Everything read from the loan book (sub-ledger totals, schedules, the allowance, loans to
positions) is read whole, as `reconcile` does; rows are fetched at once (`.all()`: one
driver call, not one per row), and the new funder flows, tens of thousands a month, as the
driver's own tuples (`driver_rows`). The result is `reconcile`'s, difference for
difference (tests/funding/test_running_reconcile.py checks both, on books that tie and books
that do not).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from lendstack.funding.subledger import POSITION_SIGN
from lendstack.storage.calendar import as_date, last_closed
from lendstack.storage.driver_sql import driver_rows
from lendstack.storage.reports import Difference, reconcile_from, trial_balance_of
from lendstack.storage.subledger import (
    Mismatch,
    expected_gl_of,
    gl_mismatches,
    loans_to_positions,
    position_mismatch,
)

_RANGE = "id > :lo AND id <= :hi"

_LINE_SUMS = text(
    "SELECT account, funder_id, SUM(debit_fen), SUM(credit_fen) FROM journal_lines"
    f" WHERE {_RANGE} GROUP BY account, funder_id"
)
# every line of each entry that has a new line: a whole entry, whatever lines were read before
_ENTRY_SUMS = text(
    "SELECT entry_id, SUM(debit_fen), SUM(credit_fen) FROM journal_lines WHERE entry_id IN"
    f" (SELECT entry_id FROM journal_lines WHERE {_RANGE}) GROUP BY entry_id"
)
# The flows are read once and summed here, both ways at once: two GROUP BY statements read
# the same rows twice and sorted each set, for more than this loop costs.
_FLOWS = (
    f"SELECT loan_id, funder_id, flow, business_date, amount_fen FROM funder_flows WHERE {_RANGE}"
)
_HELD = "SELECT loan_id, funder_id, principal_fen FROM funder_positions WHERE principal_fen <> 0"
_ZERO_HELD = (
    "SELECT loan_id, funder_id, principal_fen FROM funder_positions WHERE principal_fen = 0"
)
_LOANS_AT_ONCE = 500
_POSITION_SIGN = {flow.value: sign for flow, sign in POSITION_SIGN.items()}
"""The sign a flow moves its funder's position by, as `subledger.position_sql` writes it
(a flow not in it, 0)."""

FlowKey = tuple[str, str]
"""(funder id, flow)"""


@dataclass
class RunningReconcile:
    """The sums `reconcile` needs, through the journal line and funder flow last read.
    Valid for one database only."""

    lines_through: int = 0
    accounts: dict[str, list[int]] = field(default_factory=dict)
    """Account code → [debit, credit] fen."""
    by_funder: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    """(account code, funder) → net debit fen of the lines tagged with a funder."""
    unbalanced: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Entry id → (debit, credit) fen of the entries that do not balance."""
    flows_through: int = 0
    positions: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    """(loan, funder) → the signed sum of its flows (what its position must be)."""
    closed_flows: dict[FlowKey, int] = field(default_factory=lambda: defaultdict(int))
    """Flows of dates up to `closed_through`, per funder and flow."""
    open_flows: dict[date, dict[FlowKey, int]] = field(default_factory=dict)
    """Flows of dates after `closed_through`, per date."""
    closed_through: date | None = None

    def check(self, conn: Connection) -> list[Difference]:
        """`reports.reconcile(conn)`, from the carried sums and the rows added since."""
        self._read_lines(conn)
        self._read_flows(conn)
        closed = last_closed(conn)
        if closed is not None and self.closed_through is not None and closed < self.closed_through:
            # the last close went back (never in a run): sum the flows afresh
            self._forget_flows()
            self._read_flows(conn)
        self._close_flows(closed)
        tb = trial_balance_of((code, d, c) for code, (d, c) in sorted(self.accounts.items()))
        unbalanced = [(e, d, c) for e, (d, c) in sorted(self.unbalanced.items())]
        return reconcile_from(conn, tb, unbalanced, self._funders(conn, closed))

    def _read_lines(self, conn: Connection) -> None:
        hi = int(conn.execute(text("SELECT MAX(id) FROM journal_lines")).scalar() or 0)
        if hi <= self.lines_through:
            return
        span = {"lo": self.lines_through, "hi": hi}
        for account, funder_id, debit, credit in conn.execute(_LINE_SUMS, span).all():
            sums = self.accounts.setdefault(str(account), [0, 0])
            sums[0] += int(debit or 0)
            sums[1] += int(credit or 0)
            if funder_id is not None:
                self.by_funder[(str(account), str(funder_id))] += int(debit or 0) - int(credit or 0)
        for entry_id, debit, credit in conn.execute(_ENTRY_SUMS, span).all():
            if int(debit or 0) != int(credit or 0):
                self.unbalanced[int(entry_id)] = (int(debit or 0), int(credit or 0))
            else:
                self.unbalanced.pop(int(entry_id), None)
        self.lines_through = hi

    def _read_flows(self, conn: Connection) -> None:
        hi = int(conn.execute(text("SELECT MAX(id) FROM funder_flows")).scalar() or 0)
        if hi <= self.flows_through:
            return
        span = {"lo": self.flows_through, "hi": hi}
        positions = self.positions  # ids and sums come as int and str: keys as they are
        sign = _POSITION_SIGN.get
        days: dict[tuple[str, str, Any], int] = defaultdict(int)
        for loan_id, funder_id, flow, day, fen in driver_rows(conn, _FLOWS, span):
            positions[(loan_id, funder_id)] += sign(flow, 0) * fen
            days[(funder_id, flow, day)] += fen
        for (funder_id, flow, day), fen in days.items():
            when = as_date(day)
            assert when is not None  # business_date is NOT NULL
            key = (str(funder_id), str(flow))
            if self.closed_through is not None and when <= self.closed_through:
                self.closed_flows[key] += int(fen)
            else:
                bucket = self.open_flows.setdefault(when, defaultdict(int))
                bucket[key] += int(fen)
        self.flows_through = hi

    def _forget_flows(self) -> None:
        self.flows_through, self.closed_through = 0, None
        self.positions.clear()
        self.closed_flows.clear()
        self.open_flows.clear()

    def _close_flows(self, closed: date | None) -> None:
        """Move the flows of dates now closed into the closed sums."""
        if closed is None:
            return
        for day in [d for d in self.open_flows if d <= closed]:
            for key, fen in self.open_flows.pop(day).items():
                self.closed_flows[key] += fen
        self.closed_through = closed

    def _positions_vs_flows(self, conn: Connection) -> list[Mismatch]:
        """Each position that is not the signed sum of its flows: the positions not zero
        are read (as the driver's tuples, keys typed as the flows' are), then the zero ones
        among those whose flows do not sum to zero."""
        rows = driver_rows(conn, _HELD, {})
        flows_of = self.positions.get
        out = [
            (loan_id, funder_id, principal, flows)
            for loan_id, funder_id, principal in rows
            if principal != (flows := flows_of((loan_id, funder_id), 0))
        ]
        read = {(loan_id, funder_id) for loan_id, funder_id, _ in rows}
        unread = sorted(k for k, flows in self.positions.items() if flows and k not in read)
        for lo in range(0, len(unread), _LOANS_AT_ONCE):
            some = set(unread[lo : lo + _LOANS_AT_ONCE])
            ids = ", ".join(sorted({str(int(loan_id)) for loan_id, _ in some}))
            out += [
                (loan_id, funder_id, principal, flows_of((loan_id, funder_id), 0))
                for loan_id, funder_id, principal in driver_rows(
                    conn, f"{_ZERO_HELD} AND loan_id IN ({ids})", {}
                )
                if (loan_id, funder_id) in some
            ]
        return [
            position_mismatch(int(loan_id), str(funder_id), int(principal), flows)
            for loan_id, funder_id, principal, flows in out
        ]

    def _funders(self, conn: Connection, closed: date | None) -> list[Mismatch]:
        """`reconcile_funders(conn)`: loans to positions, positions to flows, flows to GL."""
        out = loans_to_positions(conn)
        out += self._positions_vs_flows(conn)
        banks = {
            str(f)
            for f, kind in conn.execute(text("SELECT id, kind FROM funders")).all()
            if kind != "platform"
        }
        expected = (
            {}
            if closed is None
            else expected_gl_of(
                (funder, flow, fen)
                for (funder, flow), fen in self.closed_flows.items()
                if funder in banks
            )
        )
        found = {k: n for k, n in self.by_funder.items() if n}
        return out + gl_mismatches(expected, found)
