"""An index to find a request's events: delivery keeps each request's thread posts in order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_request_events_request", "request_events", ["request_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_request_events_request", "request_events")
