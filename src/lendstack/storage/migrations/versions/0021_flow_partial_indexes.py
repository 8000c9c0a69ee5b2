"""Funder flows: partial indexes for the kinds read by kind, instead of a (flow, funder) index

- `ix_funder_flows_flow_funder_id` (0016) took an entry for every flow written, and a day's
  payments write about five each (principal, interest, spread, fee parts): on SQLite about a
  third of the cost of inserting a flow, for an index read only for two kinds of flow.
- `ix_funder_flows_disbursements` (funder, date) WHERE flow = 'disbursement': the funders'
  allocations, summed at booking's re-check (`_tallies`) and at the close (`_CLOSE_EXPOSURE`,
  which reads one funder's days since its last close in one range of this index).
- `ix_funder_flows_guarantees` (funder) WHERE flow = 'guarantee': what a bank's first-loss
  guarantee has paid out (`guarantee_paid`, at the close).

Payments' flows take no entry in either. Both backends support partial indexes; the queries
name the kind as a literal, so a plan made without the parameters' values still uses them.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = {
    "ix_funder_flows_disbursements": (["funder_id", "business_date"], "disbursement"),
    "ix_funder_flows_guarantees": (["funder_id"], "guarantee"),
}


def upgrade() -> None:
    for name, (columns, flow) in _KINDS.items():
        where = sa.text(f"flow = '{flow}'")
        op.create_index(name, "funder_flows", columns, sqlite_where=where, postgresql_where=where)
    op.drop_index("ix_funder_flows_flow_funder_id", table_name="funder_flows")


def downgrade() -> None:
    op.create_index("ix_funder_flows_flow_funder_id", "funder_flows", ["flow", "funder_id"])
    for name in _KINDS:
        op.drop_index(name, table_name="funder_flows")
