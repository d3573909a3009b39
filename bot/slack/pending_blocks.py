"""What people read when a pending request is cancelled, expires or waits long: pure text builders, no network.

The hours shown are measured on the request itself (from its creation to its expiry or reminder), so they
stay true whatever REQUEST_TTL_HOURS says later.
"""

from __future__ import annotations

from datetime import datetime

from bot.requests import GrantRequest, RequestState
from bot.slack.blocks import environment_tag, qualification_text, slack_date


def cancelled_status(request: GrantRequest) -> str:
    """The request message's status line, where the buttons were."""
    return f":no_entry_sign: Cancelled by <@{request.decided_by}> {slack_date(request.decided_at)}"


def expired_status(request: GrantRequest) -> str:
    return (
        f":hourglass: Expired {slack_date(request.finished_at)} "
        f"(no decision within {_hours_since_created(request, request.finished_at)} h)"
    )


def cancellation_reply(request: GrantRequest) -> str:
    return (
        f"{environment_tag(request.mturk_env)} :no_entry_sign: Cancelled by <@{request.decided_by}>, who made the "
        "request. Nothing was granted."
    )


def expiry_reply(request: GrantRequest) -> str:
    hours = _hours_since_created(request, request.finished_at)
    return (
        f"{environment_tag(request.mturk_env)} :hourglass: Expired: no approver decided within {hours} h. Nothing "
        "was granted; the requester was told."
    )


def reminder_reply(request: GrantRequest) -> str:
    """Posted in the thread and shown in the channel too, mentioning nobody."""
    hours = _hours_since_created(request, request.reminded_at)
    return (
        f"{environment_tag(request.mturk_env)} :hourglass_flowing_sand: Request #{request.id} is still waiting for an "
        f"approver ({hours} h). Approve or Reject it on the message above."
    )


def expiry_dm(request: GrantRequest, link: str | None) -> str:
    hours = _hours_since_created(request, request.finished_at)
    see = f" <{link}|See the request>" if link else ""
    return (
        f"{environment_tag(request.mturk_env)} Your request #{request.id} to grant {qualification_text(request)} "
        f"to {request.worker_count} worker(s) expired: no approver decided within {hours} h. Nothing was granted; "
        f"make it again with /grant-qual if it is still needed.{see}"
    )


def closed_answer(request: GrantRequest) -> str:
    """The answer to a click or a cancel on a request that was cancelled or expired: nothing changes."""
    if request.state is RequestState.CANCELLED:
        return f"Request #{request.id} was cancelled by <@{request.decided_by}>; nothing changed."
    if request.state is RequestState.EXPIRED:
        return (
            f"Request #{request.id} expired {slack_date(request.finished_at)} with no decision; nothing changed. "
            "Its requester can make it again with /grant-qual."
        )
    by = f" by <@{request.decided_by}>" if request.decided_by else ""
    return f"Request #{request.id} is already {request.state.value}{by}; it can no longer be cancelled."


def cancelled_answer(request: GrantRequest) -> str:
    """The requester's ephemeral confirmation."""
    return f":no_entry_sign: Request #{request.id} is cancelled; its message in the approvals channel says so."


def _hours_since_created(request: GrantRequest, moment: datetime | None) -> int:
    if moment is None:
        return 0
    return int((moment - request.created_at).total_seconds() // 3600)
