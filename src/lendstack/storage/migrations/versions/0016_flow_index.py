"""Index funder flows by kind, so summing the funders' allocations reads only disbursements

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_funder_flows_flow_funder_id", "funder_flows", ["flow", "funder_id"])


def downgrade() -> None:
    op.drop_index("ix_funder_flows_flow_funder_id", table_name="funder_flows")
