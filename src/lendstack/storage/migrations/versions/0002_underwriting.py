"""underwriting: decision log and its head anchor, rule pack texts, review queue, rejected inputs, API keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column("seq", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("decision_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("application_date", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("borrower_key", sa.String(64), nullable=False),
        sa.Column("offer_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_sha256", sa.String(64), nullable=True),
        sa.Column("record_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_decision_log")),
        sa.UniqueConstraint(
            "channel", "idempotency_key", name=op.f("uq_decision_log_channel_idempotency_key")
        ),
    )
    op.create_index("ix_decision_log_decision", "decision_log", ["decision_id", "kind"])
    op.create_index(
        "ix_decision_log_borrower", "decision_log", ["borrower_key", "application_date"]
    )
    op.create_index("ix_decision_log_date", "decision_log", ["application_date"])
    op.create_table(
        "rule_pack_texts",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pack_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_rule_pack_texts")),
    )
    op.create_table(
        "review_queue",
        sa.Column("decision_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_review_queue")),
    )
    op.create_index("ix_review_queue_status", "review_queue", ["status", "opened_at"])
    op.create_table(
        "rejected_inputs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_inputs")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_api_keys_key_sha256")),
    )
    op.create_table(
        "decision_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_log_head")),
    )


def downgrade() -> None:
    tables = ("decision_log_head", "api_keys", "rejected_inputs", "review_queue", "rule_pack_texts")
    for table in tables:
        op.drop_table(table)
    op.drop_table("decision_log")
