"""Fewer index entries per funder flow and journal line: the indexes no reader needed

Every payment writes about five funder flows and four journal lines, and on SQLite each
secondary index is a B-tree insert per row (callgrind, replaying a 10,000 x 24 run's last
20,000 rows of each: a flow 41.3k instructions, a line 19.4k). This migration takes out the
entries that no query needs:

- `ix_funder_flows_business_date` and `ix_funder_flows_funder_id_business_date` become one
  `(business_date, funder_id)` index (-7.1k a flow). Every reader of flows by date reads one
  date, or the few dates since a close, for every funder or for one: the close's funding
  entry and day count, the settlement statements, booking's exposure re-check. The kinds read
  per funder over all dates keep their partial indexes (0021).
- `ix_funder_flows_loan_id` (-5.3k a flow): read only by the whole-book reconciliation of
  positions to flows, which SQLite serves with an automatic index built for that query
  (0.18 s -> 0.43 s on 302k flows); no loan is ever deleted, so no foreign-key check reads it.
- `ix_journal_lines_account` (-7.0k a line): sixteen accounts, the principal one a third of
  all lines; the regulator's principal balance and the trial balance read every line of the
  ledger as fast in table order (0.026 s vs 0.019-0.031 s; trial balance 0.075-0.109 s vs
  0.066 s, on 213k lines).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = {
    "ix_funder_flows_business_date": ("funder_flows", ["business_date"]),
    "ix_funder_flows_funder_id_business_date": ("funder_flows", ["funder_id", "business_date"]),
    "ix_funder_flows_loan_id": ("funder_flows", ["loan_id"]),
    "ix_journal_lines_account": ("journal_lines", ["account"]),
}
_DAY_FUNDER = "ix_funder_flows_business_date_funder_id"


def upgrade() -> None:
    op.create_index(_DAY_FUNDER, "funder_flows", ["business_date", "funder_id"])
    for name, (table, _) in _DROPPED.items():
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, (table, columns) in _DROPPED.items():
        op.create_index(name, table, columns)
    op.drop_index(_DAY_FUNDER, table_name="funder_flows")
