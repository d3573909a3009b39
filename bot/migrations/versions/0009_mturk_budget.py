"""The MTurk budget: the learned rate limit per environment, and the replicas sharing it (bot/budget.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mturk_budget",
        sa.Column("mturk_env", sa.String(16), primary_key=True),
        sa.Column("ceiling_rate", sa.Float(), nullable=False),
        sa.Column("learned_at", sa.DateTime(), nullable=False),
        sa.Column("learned_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "mturk_replicas",
        sa.Column("replica_id", sa.String(64), primary_key=True),
        sa.Column("mturk_env", sa.String(16), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mturk_replicas")
    op.drop_table("mturk_budget")
