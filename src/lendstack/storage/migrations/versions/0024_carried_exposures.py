"""Carried exposures: each funder's close row says which funder flows its balance includes
(storage.funding.close_exposures)

The close's funding step summed every open loan's funder positions each day to write each
funder's balance. A close may now carry the balance instead: positions move only by funder
flows, which are only ever appended, so the balance at this close is the last one plus the
flows written since. `flows_through` is the id of the last flow a row's balance includes;
NULL (every row before this migration, and a funder just added) means unknown, and the next
close sums the positions as before.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("funder_exposures") as batch:
        batch.add_column(sa.Column("flows_through", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("funder_exposures") as batch:
        batch.drop_column("flows_through")
