"""Grants that expire: the duration or moment a grant expires at, the request that revoked it once it expired, the
requester's notice before, and on an expiry request the request whose grant it revokes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every request stored before expiry existed never expires: all NULL.
    with op.batch_alter_table("grant_requests") as batch:
        batch.add_column(sa.Column("expires_after_seconds", sa.Integer()))
        batch.add_column(sa.Column("expires_at", sa.DateTime()))
        batch.add_column(sa.Column("expiry_request_id", sa.Integer()))
        batch.add_column(sa.Column("expiry_notice_at", sa.DateTime()))
        batch.add_column(sa.Column("expiry_of", sa.Integer()))
    op.create_index("ix_grant_requests_expires_at", "grant_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_grant_requests_expires_at", table_name="grant_requests")
    with op.batch_alter_table("grant_requests") as batch:
        batch.drop_column("expiry_of")
        batch.drop_column("expiry_notice_at")
        batch.drop_column("expiry_request_id")
        batch.drop_column("expires_at")
        batch.drop_column("expires_after_seconds")
