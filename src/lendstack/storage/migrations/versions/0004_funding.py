"""funding: co-lending partners (funders) and per-loan funding plans

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "funders",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funders")),
    )
    op.create_table(
        "funding_plans",
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("funder_id", sa.String(64), nullable=False),
        sa.Column("share", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_funding_plans_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["funder_id"], ["funders.id"], name=op.f("fk_funding_plans_funder_id_funders")
        ),
        sa.PrimaryKeyConstraint("loan_id", "funder_id", name=op.f("pk_funding_plans")),
    )
    op.create_index("ix_funding_plans_funder_id", "funding_plans", ["funder_id"])


def downgrade() -> None:
    op.drop_index("ix_funding_plans_funder_id", table_name="funding_plans")
    op.drop_table("funding_plans")
    op.drop_table("funders")
