"""Block Kit for grants that expire (pure): the request message's expiry line and its Extend / Revoke now buttons,
the thread replies and DMs of an expiry, and the Extend modal."""

from __future__ import annotations

from datetime import timedelta

from bot.config import MTurkEnvironment
from bot.outcome_digest import OutcomeDigest
from bot.requests import EXPIRY_EXAMPLES, GrantRequest, WorkerStatus
from bot.slack.blocks import (
    MESSAGE_TEXT_LIMIT,
    Block,
    environment_tag,
    qualification_text,
    slack_date,
    truncate,
    worker_list,
)

EXTEND_ACTION = "extend_expiry"
REVOKE_NOW_ACTION = "revoke_now"
EXTEND_MODAL_CALLBACK = "extend_expiry_modal"
EXTEND_BLOCK = "expires"


def duration_text(after: timedelta) -> str:
    """ "30 days", "8 weeks", "12 hours" (as typed: whole weeks, days or hours)."""
    hours = int(after.total_seconds() // 3600)
    for size, unit in ((24 * 7, "week"), (24, "day"), (1, "hour")):
        if hours % size == 0:
            count = hours // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{hours} hours"


def expiry_line(request: GrantRequest) -> str | None:
    """The request message's expiry line, for a grant that expires (or expired)."""
    if request.expiry_request_id is not None:
        return f":hourglass: *Grant expired*: revoked as request #{request.expiry_request_id} (see the thread)."
    if request.expires_at is not None:
        return f":hourglass_flowing_sand: *Expires* {slack_date(request.expires_at)}"
    if request.expires_after is not None:
        return f":hourglass_flowing_sand: *Expires* {duration_text(request.expires_after)} after it is granted"
    return None


def with_expiry(request: GrantRequest, message_blocks: list[Block], *, finished: bool) -> list[Block]:
    """The request message with its expiry line before its status (or buttons), and, once a grant that expires has
    finished, Extend and Revoke now."""
    line = expiry_line(request)
    if line is None:
        return message_blocks
    shown = [*message_blocks[:-1], {"type": "section", "text": {"type": "mrkdwn", "text": line}}, message_blocks[-1]]
    if finished and request.expires:
        shown.append(_expiry_buttons(request))
    return shown


def _expiry_buttons(request: GrantRequest) -> Block:
    env = MTurkEnvironment(request.mturk_env).label
    question = (
        f"Revoke {qualification_text(request)} now from each worker request #{request.id} granted, in *{env}*? "
        "Workers re-granted since by another request are left alone."
    )
    return {
        "type": "actions",
        "block_id": f"expiry-{request.id}",
        "elements": [
            {
                "type": "button",
                "action_id": EXTEND_ACTION,
                "text": {"type": "plain_text", "text": "Extend"},
                "value": str(request.id),
            },
            {
                "type": "button",
                "action_id": REVOKE_NOW_ACTION,
                "text": {"type": "plain_text", "text": "Revoke now"},
                "style": "danger",
                "value": str(request.id),
                "confirm": {
                    "title": {"type": "plain_text", "text": "Revoke the grant now?"},
                    "text": {"type": "mrkdwn", "text": truncate(question, 300)},
                    "confirm": {"type": "plain_text", "text": "Revoke now"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
        ],
    }


def summary_note(request: GrantRequest) -> Block | None:
    """Under a grant's result summary: when it expires."""
    if request.expires_at is None or request.expiry_request_id is not None:
        return None
    text = (
        f":hourglass_flowing_sand: Expires {slack_date(request.expires_at)}. Approvers can Extend it or Revoke now "
        "on the request message."
    )
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def started_reply(expiry: GrantRequest, original: GrantRequest) -> str:
    """The original's thread when its expiry request is stored."""
    tag = environment_tag(expiry.mturk_env)
    how = (
        f":octagonal_sign: Revoked now by <@{expiry.decided_by}>"
        if expiry.decided_by
        else f":hourglass: The grant expired {slack_date(original.expires_at)} (its approval covered the expiry)"
    )
    return f"{tag} {how}: revoking it from {expiry.worker_count} worker(s) as request #{expiry.id}."


def extended_reply(request: GrantRequest, actor_id: str) -> str:
    return (
        f"{environment_tag(request.mturk_env)} :hourglass_flowing_sand: <@{actor_id}> extended the grant: it now "
        f"expires {slack_date(request.expires_at)}."
    )


def result_message(
    expiry: GrantRequest, outcomes: OutcomeDigest, general: list[Block], elapsed: float | None
) -> tuple[str, list[Block]]:
    """The expiry request's summary in the original's thread: the general summary's blocks (failures, the revoked
    list, Retry failed) under an expiry's own first line, and the workers left alone."""
    revoked = outcomes.count(status=WorkerStatus.GRANTED)
    failed = outcomes.count(status=WorkerStatus.FAILED)
    left = outcomes.count(status=WorkerStatus.SKIPPED)
    called = outcomes.called()
    of = f"all {revoked}" if revoked == called else f"{revoked} of {called}"
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    icon = ":warning:" if failed else ":hourglass:"
    by = f", revoked now by <@{expiry.decided_by}>" if expiry.decided_by else ""
    summary = (
        f"{icon} {environment_tag(expiry.mturk_env)} Grant of request #{expiry.expiry_of} expired{by}: revoked "
        f"{qualification_text(expiry)} from {of} worker(s){took}"
    )
    summary += f"; {failed} failed." if failed else "."
    if left:
        summary += f" {left} re-granted since by another request (or no longer holding it): left alone."
    message_blocks: list[Block] = [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(summary, 3000)}}]
    if left:
        ids = worker_list(outcomes.skipped_workers, total=left)
        text = f"*Left alone* (re-granted since by another request, or no longer holding it)\n{ids}"
        message_blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}})
    message_blocks += general[1:]
    plain = summary.split(" ", 1)[1].replace("`", "").replace("*", "")
    return truncate(plain, MESSAGE_TEXT_LIMIT), message_blocks


def result_dm(expiry: GrantRequest, outcomes: OutcomeDigest, link: str | None) -> str:
    revoked = outcomes.count(status=WorkerStatus.GRANTED)
    failed = outcomes.count(status=WorkerStatus.FAILED)
    left = outcomes.count(status=WorkerStatus.SKIPPED)
    see = f" <{link}|See the request>" if link else ""
    return (
        f"{environment_tag(expiry.mturk_env)} Your grant #{expiry.expiry_of} ({qualification_text(expiry)}) expired: "
        f"revoked {revoked}, left alone {left} (re-granted since by another request), failed {failed}.{see}"
    )


def notice_dm(request: GrantRequest, link: str | None) -> str:
    see = f" <{link}|See the request>" if link else ""
    return (
        f"{environment_tag(request.mturk_env)} :hourglass_flowing_sand: Your grant #{request.id} "
        f"({qualification_text(request)}, {request.worker_count} worker(s)) expires {slack_date(request.expires_at)}. "
        f"To keep it, ask an approver to click Extend on the request message.{see}"
    )


def extend_modal(request: GrantRequest) -> Block:
    current = f"It expires {request.expires_at:%Y-%m-%d %H:%M} UTC now. " if request.expires_at else ""
    return {
        "type": "modal",
        "callback_id": EXTEND_MODAL_CALLBACK,
        "private_metadata": str(request.id),
        "title": {"type": "plain_text", "text": "Extend the grant"},
        "submit": {"type": "plain_text", "text": "Extend"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": truncate(f"Request #{request.id}: {qualification_text(request)}. {current}", 3000),
                },
            },
            {
                "type": "input",
                "block_id": EXTEND_BLOCK,
                "label": {"type": "plain_text", "text": "Expires after"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "placeholder": {"type": "plain_text", "text": EXPIRY_EXAMPLES},
                },
                "hint": {"type": "plain_text", "text": "A time from now (30d, 12h, 8w) or a date (00:00 UTC)."},
            },
        ],
    }
