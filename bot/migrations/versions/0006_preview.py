"""The preview: each worker's state before the grant and the change it makes; a request's regrant choice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # All nullable: a request stored before the preview existed has none, and is granted as it always was.
    with op.batch_alter_table("grant_requests") as batch:
        batch.add_column(sa.Column("regrant", sa.Boolean()))
    with op.batch_alter_table("worker_grants") as batch:
        batch.add_column(sa.Column("previous_value", sa.Integer()))
        batch.add_column(sa.Column("previous_status", sa.String(16)))
        batch.add_column(sa.Column("change", sa.String(16)))
        batch.add_column(sa.Column("file_current", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("worker_grants") as batch:
        batch.drop_column("file_current")
        batch.drop_column("change")
        batch.drop_column("previous_status")
        batch.drop_column("previous_value")
    with op.batch_alter_table("grant_requests") as batch:
        batch.drop_column("regrant")
