"""Several approvers per request, and a reason for a rejection.

Each approval is a row of request_approvals, keyed by request and approver, so a second click by the same
approver adds nothing. A request keeps the number of approvals it needed when it was made; requests made
before this migration needed one, and keep needing one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grant_requests") as batch:
        batch.add_column(sa.Column("approvals_required", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("decision_reason", sa.Text()))
    op.create_table(
        "request_approvals",
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("grant_requests.id"), primary_key=True),
        sa.Column("approver_id", sa.String(32), primary_key=True),
        sa.Column("approved_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("request_approvals")
    with op.batch_alter_table("grant_requests") as batch:
        batch.drop_column("decision_reason")
        batch.drop_column("approvals_required")
