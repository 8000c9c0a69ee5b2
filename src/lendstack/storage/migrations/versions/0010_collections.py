"""Collections: contact log, promises to pay, settlements and restructurings

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "collection_contacts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("loan_id", Id, nullable=False),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("local_time", sa.String(5), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("party", sa.String(16), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("rule_pack", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_collection_contacts_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_contacts")),
    )
    op.create_index(
        "ix_collection_contacts_local_day_loan_id",
        "collection_contacts",
        ["local_day", "loan_id"],
    )
    op.create_index("ix_collection_contacts_loan_id", "collection_contacts", ["loan_id"])
    op.create_table(
        "promises_to_pay",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("loan_id", Id, nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("promised_on", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("due_day", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("resolved_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_promises_to_pay_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promises_to_pay")),
    )
    op.create_index("ix_promises_to_pay_loan_id", "promises_to_pay", ["loan_id"])
    op.create_index("ix_promises_to_pay_status_due_day", "promises_to_pay", ["status", "due_day"])


def downgrade() -> None:
    op.drop_index("ix_promises_to_pay_status_due_day", table_name="promises_to_pay")
    op.drop_index("ix_promises_to_pay_loan_id", table_name="promises_to_pay")
    op.drop_table("promises_to_pay")
    op.drop_index("ix_collection_contacts_loan_id", table_name="collection_contacts")
    op.drop_index("ix_collection_contacts_local_day_loan_id", table_name="collection_contacts")
    op.drop_table("collection_contacts")
