"""Funder exposures kept at close, so booking re-checks a plan in O(funders)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A book already closed gets rows as of its last close: today's balances (what the next close
# would write, never less than the close's), the allocations up to the close. A book never
# closed gets none: the flows alone are its exposure until its first close.
_BACKFILL = """
INSERT INTO funder_exposures (funder_id, closed_on, balance_fen, allocated_fen)
SELECT f.id, c.closed_on,
  COALESCE((SELECT SUM(p.principal_fen) FROM funder_positions p JOIN loans l ON l.id = p.loan_id
            WHERE p.funder_id = f.id AND p.principal_fen > 0
            AND l.status IN ('approved', 'active')), 0),
  COALESCE((SELECT SUM(x.amount_fen) FROM funder_flows x WHERE x.flow = 'disbursement'
            AND x.funder_id = f.id AND x.business_date <= c.closed_on), 0)
FROM funders f
JOIN (SELECT MAX(business_date) AS closed_on FROM cob_steps WHERE step = 'closed') c
  ON c.closed_on IS NOT NULL
"""


def upgrade() -> None:
    op.create_table(
        "funder_exposures",
        sa.Column("funder_id", sa.String(length=64), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("balance_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("allocated_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["funder_id"], ["funders.id"]),
        sa.PrimaryKeyConstraint("funder_id"),
    )
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_table("funder_exposures")
