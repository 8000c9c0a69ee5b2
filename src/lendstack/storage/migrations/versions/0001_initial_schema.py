"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "cob_steps",
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("step", "business_date", name=op.f("pk_cob_steps")),
    )
    op.create_table(
        "journal_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("reverses", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses"],
            ["journal_entries.id"],
            name=op.f("fk_journal_entries_reverses_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint("reference", name=op.f("uq_journal_entries_reference")),
    )
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journal_entries_business_date"), ["business_date"], unique=False
        )

    op.create_table(
        "loan_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("loan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("old", sa.String(length=16), nullable=False),
        sa.Column("new", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_events")),
        sa.UniqueConstraint(
            "loan_id",
            "business_date",
            "kind",
            name=op.f("uq_loan_events_loan_id_business_date_kind"),
        ),
    )
    with op.batch_alter_table("loan_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_loan_events_business_date"), ["business_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_loan_events_loan_id"), ["loan_id"], unique=False)

    op.create_table(
        "loans",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=80), nullable=True),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("annual_rate", sa.String(length=24), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("disbursement_date", sa.Date(), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("day_count", sa.String(length=12), nullable=False),
        sa.Column("rounding", sa.String(length=12), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("penalty_multiplier", sa.String(length=12), nullable=False),
        sa.Column("penalty_rate_e8", sa.BigInteger(), nullable=False),
        sa.Column("year_days", sa.Integer(), nullable=False),
        sa.Column("waterfall", sa.String(length=200), nullable=False),
        sa.Column("non_accrual_dpd", sa.Integer(), nullable=False),
        sa.Column("charge_off_dpd", sa.Integer(), nullable=False),
        sa.Column("fee_rate", sa.String(length=24), nullable=False),
        sa.Column("upfront_fee_rate", sa.String(length=24), nullable=False),
        sa.Column("prepayment_fee_rate", sa.String(length=24), nullable=False),
        sa.Column("bal_principal", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bal_interest", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bal_fee", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bal_penalty", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bal_credit", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("period_no", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.Integer(), nullable=True),
        sa.Column("period_due", sa.Integer(), nullable=True),
        sa.Column("period_interest", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("period_accrued", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("oldest_due", sa.Integer(), nullable=True),
        sa.Column("dpd", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bucket", sa.Integer(), server_default="0", nullable=False),
        sa.Column("risk_class", sa.String(length=16), nullable=False),
        sa.Column("non_accrual", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("schedule_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("charged_off_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("recovered_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
        sa.UniqueConstraint("reference", name=op.f("uq_loans_reference")),
        postgresql_with={"fillfactor": "60"},
    )
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loans_holding_credit",
            ["id"],
            unique=False,
            sqlite_where=sa.text("bal_credit > 0"),
            postgresql_where=sa.text("bal_credit > 0"),
        )
        batch_op.create_index(
            "ix_loans_status_dpd_bucket", ["status", "dpd", "bucket"], unique=False
        )
        batch_op.create_index(
            "ix_loans_status_non_accrual", ["status", "non_accrual"], unique=False
        )
        batch_op.create_index("ix_loans_status_oldest_due", ["status", "oldest_due"], unique=False)
        batch_op.create_index("ix_loans_status_period_due", ["status", "period_due"], unique=False)

    op.create_table(
        "portfolio_snapshots",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("risk_class", sa.String(length=16), nullable=False),
        sa.Column("loans", sa.BigInteger(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("penalty_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "business_date",
            "product_id",
            "bucket",
            "risk_class",
            name=op.f("pk_portfolio_snapshots"),
        ),
    )
    op.create_table(
        "installments",
        sa.Column("loan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("due_day", sa.Integer(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_principal_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_interest_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_fee_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("billed", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_installments_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("loan_id", "version", "number", name=op.f("pk_installments")),
    )
    with op.batch_alter_table("installments", schema=None) as batch_op:
        batch_op.create_index("ix_installments_due_day", ["due_day"], unique=False)

    op.create_table(
        "journal_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account", sa.String(length=8), nullable=False),
        sa.Column("loan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("funder_id", sa.String(length=64), nullable=True),
        sa.Column("debit_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credit_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_lines_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_lines")),
    )
    with op.batch_alter_table("journal_lines", schema=None) as batch_op:
        batch_op.create_index("ix_journal_lines_account", ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_journal_lines_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("loan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=24), nullable=True),
        sa.Column("applied", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "reversal_entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("schedule_version_before", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_payments_entry_id_journal_entries")
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_payments_loan_id_loans")),
        sa.ForeignKeyConstraint(
            ["reversal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_payments_reversal_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payments_idempotency_key")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_loan_id"), ["loan_id"], unique=False)

    op.create_table(
        "payment_parts",
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_parts_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("payment_id", "number", name=op.f("pk_payment_parts")),
    )


def downgrade() -> None:

    op.drop_table("payment_parts")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_loan_id"))

    op.drop_table("payments")
    with op.batch_alter_table("journal_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_lines_entry_id"))
        batch_op.drop_index("ix_journal_lines_account")

    op.drop_table("journal_lines")
    with op.batch_alter_table("installments", schema=None) as batch_op:
        batch_op.drop_index("ix_installments_due_day")

    op.drop_table("installments")
    op.drop_table("portfolio_snapshots")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_index("ix_loans_status_period_due")
        batch_op.drop_index("ix_loans_status_oldest_due")
        batch_op.drop_index("ix_loans_status_non_accrual")
        batch_op.drop_index("ix_loans_status_dpd_bucket")
        batch_op.drop_index(
            "ix_loans_holding_credit",
            sqlite_where=sa.text("bal_credit > 0"),
            postgresql_where=sa.text("bal_credit > 0"),
        )

    op.drop_table("loans")
    with op.batch_alter_table("loan_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loan_events_loan_id"))
        batch_op.drop_index(batch_op.f("ix_loan_events_business_date"))

    op.drop_table("loan_events")
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_entries_business_date"))

    op.drop_table("journal_entries")
    op.drop_table("cob_steps")
