"""Guarantee fees: each funder's annual guarantee fee priced into a co-funded loan

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("funding_plans") as batch:
        batch.add_column(
            sa.Column("guarantee_fee_rate", sa.String(16), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("funding_plans") as batch:
        batch.drop_column("guarantee_fee_rate")
