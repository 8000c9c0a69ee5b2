"""decision log: database-level append-only guard (triggers)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

from lendstack.storage.guards import create_append_only_guard, drop_append_only_guard

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_append_only_guard(op.get_bind())


def downgrade() -> None:
    drop_append_only_guard(op.get_bind())
