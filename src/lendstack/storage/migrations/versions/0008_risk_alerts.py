"""Risk alerts: the early-warning alerts raised at each month-end, one row per stable alert id

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "risk_alerts",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("measured", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Text(), nullable=False),
        sa.Column("cohorts", sa.Text(), nullable=False),
        sa.Column("loans", sa.Text(), nullable=False),
        sa.Column("alert_json", sa.Text(), nullable=False),
        sa.Column("first_raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_alerts")),
    )
    op.create_index("ix_risk_alerts_period", "risk_alerts", ["period"])


def downgrade() -> None:
    op.drop_index("ix_risk_alerts_period", table_name="risk_alerts")
    op.drop_table("risk_alerts")
