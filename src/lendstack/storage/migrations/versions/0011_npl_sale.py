"""NPL sale: portfolios, their loans and sales

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade() -> None:
    op.create_table(
        "npl_portfolios",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("criteria_json", sa.Text(), nullable=False),
        sa.Column("loans", sa.BigInteger(), nullable=False),
        _fen("principal_fen"),
        _fen("interest_fen"),
        _fen("fee_fen"),
        _fen("penalty_fen"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_npl_portfolios")),
        sa.UniqueConstraint("name", name=op.f("uq_npl_portfolios_name")),
    )
    op.create_table(
        "npl_portfolio_loans",
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("loan_id", Id, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _fen("principal_fen"),
        _fen("interest_fen"),
        _fen("fee_fen"),
        _fen("penalty_fen"),
        sa.Column("months_since_default", sa.Integer(), nullable=False),
        sa.Column("sale_price_fen", sa.BigInteger(), nullable=True),
        sa.Column("allowance_fen", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["npl_portfolios.id"],
            name=op.f("fk_npl_portfolio_loans_portfolio_id_npl_portfolios"),
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_npl_portfolio_loans_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("portfolio_id", "loan_id", name=op.f("pk_npl_portfolio_loans")),
    )
    op.create_index("ix_npl_portfolio_loans_loan_id", "npl_portfolio_loans", ["loan_id"])
    op.create_table(
        "npl_sales",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("buyer_id", sa.String(64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        _fen("price_fen"),
        _fen("carrying_fen"),
        _fen("allowance_released_fen"),
        sa.Column("ecl_run_id", Id, nullable=True),
        sa.Column("loss_fen", sa.BigInteger(), nullable=False),
        sa.Column("proceeds_json", sa.Text(), nullable=False),
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["npl_portfolios.id"],
            name=op.f("fk_npl_sales_portfolio_id_npl_portfolios"),
        ),
        sa.ForeignKeyConstraint(
            ["ecl_run_id"], ["ecl_runs.id"], name=op.f("fk_npl_sales_ecl_run_id_ecl_runs")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_npl_sales_entry_id_journal_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_npl_sales")),
        sa.UniqueConstraint("portfolio_id", name=op.f("uq_npl_sales_portfolio_id")),
    )
    op.create_table(
        "npl_sold_loans",
        sa.Column("loan_id", Id, nullable=False),
        sa.Column("sale_id", Id, nullable=False),
        sa.Column("buyer_id", sa.String(64), nullable=False),
        sa.Column("sold_on", sa.Date(), nullable=False),
        sa.Column("no_resale", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_npl_sold_loans_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["npl_sales.id"], name=op.f("fk_npl_sold_loans_sale_id_npl_sales")
        ),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_npl_sold_loans")),
    )


def downgrade() -> None:
    op.drop_table("npl_sold_loans")
    op.drop_table("npl_sales")
    op.drop_index("ix_npl_portfolio_loans_loan_id", table_name="npl_portfolio_loans")
    op.drop_table("npl_portfolio_loans")
    op.drop_table("npl_portfolios")
