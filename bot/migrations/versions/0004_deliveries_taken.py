"""The keys of Slack deliveries already taken, so a replayed, retried or re-delivered copy does nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries_taken",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_deliveries_taken_received_at", "deliveries_taken", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_taken_received_at", "deliveries_taken")
    op.drop_table("deliveries_taken")
