"""When the approvers were reminded of a request still pending (once per request).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grant_requests") as batch:
        batch.add_column(sa.Column("reminded_at", sa.DateTime()))


def downgrade() -> None:
    with op.batch_alter_table("grant_requests") as batch:
        batch.drop_column("reminded_at")
