"""funder sub-ledgers: per-loan funder positions and the split of every cash flow

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "funder_positions",
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("funder_id", sa.String(64), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("share_units", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_funder_positions_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["funder_id"], ["funders.id"], name=op.f("fk_funder_positions_funder_id_funders")
        ),
        sa.PrimaryKeyConstraint("loan_id", "funder_id", name=op.f("pk_funder_positions")),
    )
    op.create_index("ix_funder_positions_funder_id", "funder_positions", ["funder_id"])
    op.create_table(
        "funder_flows",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("funder_id", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(60), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_funder_flows_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["funder_id"], ["funders.id"], name=op.f("fk_funder_flows_funder_id_funders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funder_flows")),
        sa.UniqueConstraint(
            "source", "funder_id", "flow", name=op.f("uq_funder_flows_source_funder_id_flow")
        ),
    )
    op.create_index("ix_funder_flows_loan_id", "funder_flows", ["loan_id"])
    op.create_index("ix_funder_flows_business_date", "funder_flows", ["business_date"])
    op.create_index(
        "ix_funder_flows_funder_id_business_date", "funder_flows", ["funder_id", "business_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_funder_flows_funder_id_business_date", table_name="funder_flows")
    op.drop_index("ix_funder_flows_business_date", table_name="funder_flows")
    op.drop_index("ix_funder_flows_loan_id", table_name="funder_flows")
    op.drop_table("funder_flows")
    op.drop_index("ix_funder_positions_funder_id", table_name="funder_positions")
    op.drop_table("funder_positions")
