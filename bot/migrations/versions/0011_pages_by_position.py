"""The executor reads a request's pending workers a page at a time, by position: an index for that.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_worker_grants_request_position", "worker_grants", ["request_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_worker_grants_request_position", table_name="worker_grants")
