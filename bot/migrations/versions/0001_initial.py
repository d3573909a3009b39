"""Requests, per-worker results, and request events (the audit trail and the Slack outbox).

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grant_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("requester_id", sa.String(32), nullable=False),
        sa.Column("qualification_type_id", sa.String(64), nullable=False),
        sa.Column("qualification_name", sa.String(255)),
        sa.Column("send_notification", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("mturk_env", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("decided_by", sa.String(32)),
        sa.Column("decided_at", sa.DateTime),
        sa.Column("channel_id", sa.String(32)),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", sa.DateTime),
    )
    op.create_index("ix_grant_requests_state", "grant_requests", ["state"])
    op.create_table(
        "worker_grants",
        sa.Column("request_id", sa.Integer, sa.ForeignKey("grant_requests.id"), primary_key=True),
        sa.Column("worker_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("integer_value", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(128)),
        sa.Column("error_message", sa.Text),
        sa.Column("hint", sa.Text),
        sa.Column("dispatched_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_worker_grants_request_status", "worker_grants", ["request_id", "status"])
    op.create_table(
        "request_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("grant_requests.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("delivery_state", sa.String(16), nullable=False),
        sa.Column("steps_done", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("lease_expires_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", sa.DateTime),
    )
    op.create_index("ix_request_events_delivery", "request_events", ["delivery_state", "next_attempt_at"])
