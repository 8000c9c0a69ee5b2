"""ECL runs: the loan loss allowance measured from the book, by run and by loan

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_POSTED = sa.text("posted_at IS NOT NULL")


def _fen(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade() -> None:
    op.create_table(
        "ecl_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("config_id", sa.String(64), nullable=False),
        sa.Column("config_sha256", sa.String(64), nullable=False),
        sa.Column("matrix_sha256", sa.String(64), server_default="", nullable=False),
        sa.Column("result_sha256", sa.String(64), nullable=False),
        sa.Column("loans", sa.BigInteger(), nullable=False),
        _fen("ead_fen"),
        _fen("total_fen"),
        _fen("stage1_fen"),
        _fen("stage2_fen"),
        _fen("stage3_fen"),
        sa.Column("stage1_loans", sa.BigInteger(), nullable=False),
        sa.Column("stage2_loans", sa.BigInteger(), nullable=False),
        sa.Column("stage3_loans", sa.BigInteger(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("entry_id", _ID, nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_ecl_runs_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecl_runs")),
        sa.UniqueConstraint(
            "as_of",
            "config_sha256",
            "matrix_sha256",
            name=op.f("uq_ecl_runs_as_of_config_sha256_matrix_sha256"),
        ),
    )
    op.create_index(
        "ix_ecl_runs_posted_as_of",
        "ecl_runs",
        ["as_of"],
        unique=True,
        sqlite_where=_POSTED,
        postgresql_where=_POSTED,
    )
    op.create_table(
        "ecl_run_loans",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("causes", sa.Integer(), nullable=False),
        _fen("ead_fen"),
        _fen("ecl_fen"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["ecl_runs.id"], name=op.f("fk_ecl_run_loans_run_id_ecl_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "loan_id", name=op.f("pk_ecl_run_loans")),
    )


def downgrade() -> None:
    op.drop_table("ecl_run_loans")
    op.drop_index(
        "ix_ecl_runs_posted_as_of",
        table_name="ecl_runs",
        sqlite_where=_POSTED,
        postgresql_where=_POSTED,
    )
    op.drop_table("ecl_runs")
