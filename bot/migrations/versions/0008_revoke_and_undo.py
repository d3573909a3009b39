"""Revoke and Undo: each worker's operation (grant or revoke), the message sent to revoked workers, and the
links between a request and the request that undoes it.

Revision ID: 0008
Revises: 0006 (to be re-pointed at 0007 once that is merged)
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every request stored before revokes existed granted all its workers: 'grant', no revokes, no links.
    with op.batch_alter_table("grant_requests") as batch:
        batch.add_column(sa.Column("worker_message", sa.Text()))
        batch.add_column(sa.Column("undo_of", sa.Integer()))
        batch.add_column(sa.Column("undone_by", sa.Integer()))
        batch.add_column(sa.Column("revoke_count", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("worker_grants") as batch:
        batch.add_column(sa.Column("operation", sa.String(8), nullable=False, server_default="grant"))


def downgrade() -> None:
    with op.batch_alter_table("worker_grants") as batch:
        batch.drop_column("operation")
    with op.batch_alter_table("grant_requests") as batch:
        batch.drop_column("revoke_count")
        batch.drop_column("undone_by")
        batch.drop_column("undo_of")
        batch.drop_column("worker_message")
