"""Rounds (Retry failed re-runs a request's failed workers) and the thread messages a grant keeps updating.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grant_requests") as batch:
        batch.add_column(sa.Column("round", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("progress_ts", sa.String(32)))
        batch.add_column(sa.Column("summary_ts", sa.String(32)))
    with op.batch_alter_table("worker_grants") as batch:
        batch.add_column(sa.Column("round", sa.Integer, nullable=False, server_default="1"))
    with op.batch_alter_table("request_events") as batch:
        batch.add_column(sa.Column("round", sa.Integer, nullable=False, server_default="1"))
