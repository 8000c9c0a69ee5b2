"""risk: loan profiles, the loan-month panel and first-payment defaults

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _loan_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["loan_id"], ["loans.id"], name=op.f(f"fk_{table}_loan_id_loans")
    )


def upgrade() -> None:
    op.create_table(
        "loan_profiles",
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("decision_id", sa.String(40), nullable=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("province", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("pd_origination", sa.Double(), nullable=True),
        sa.Column("lead_funder_id", sa.String(64), nullable=True),
        _loan_fk("loan_profiles"),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_loan_profiles")),
    )
    op.create_table(
        "loan_month_ends",
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("month_end", sa.Date(), nullable=False),
        sa.Column("origination_month", sa.Date(), nullable=False),
        sa.Column("months_on_book", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(4), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("risk_class", sa.String(16), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("funder", sa.String(64), nullable=False),
        sa.Column("province", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("first_payment_default", sa.Boolean(), nullable=False),
        _loan_fk("loan_month_ends"),
        sa.PrimaryKeyConstraint("loan_id", "month_end", name=op.f("pk_loan_month_ends")),
    )
    op.create_index("ix_loan_month_ends_month_end", "loan_month_ends", ["month_end"])
    op.create_table(
        "first_payment_defaults",
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        _loan_fk("first_payment_defaults"),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_first_payment_defaults")),
    )
    op.create_index("ix_loans_closed_on", "loans", ["closed_on"])


def downgrade() -> None:
    op.drop_index("ix_loans_closed_on", table_name="loans")
    op.drop_table("first_payment_defaults")
    op.drop_index("ix_loan_month_ends_month_end", table_name="loan_month_ends")
    op.drop_table("loan_month_ends")
    op.drop_table("loan_profiles")
