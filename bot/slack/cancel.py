"""Cancelling a pending request from Slack: `/grant-qual cancel 12`, and the answers to it and to the button.

The Cancel button's listener is in actions.py with the other buttons; both call the service and answer here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.requests import CancelWanted
from bot.service import Decision, DecisionResult
from bot.slack import pending_blocks
from bot.slack.after_ack import Requester

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


def cancel_by_command(context: SlackContext, requester: Requester, wanted: CancelWanted) -> None:
    """Cancel the requester's own pending request and tell them how it went (ephemeral)."""
    try:
        decision = context.service.cancel(wanted.request_id, requester.user_id, origin=None)
    except Exception:
        log.exception("cancelling request #%s for %s failed", wanted.request_id, requester.user_id)
        requester.reply(
            f":warning: Something went wrong cancelling request #{wanted.request_id}; its message in the approvals "
            "channel shows where it stands. Please try again."
        )
        return
    if decision.result is DecisionResult.CANCELLED:
        context.delivery.wake()  # the delivery thread updates the message and the thread now
    requester.reply(cancel_answer(decision))


def cancel_answer(decision: Decision) -> str:
    """What the person who asked to cancel is told."""
    request = decision.request
    if decision.result is DecisionResult.CANCELLED and request:
        return pending_blocks.cancelled_answer(request)
    if decision.result is DecisionResult.ALREADY_DECIDED and request:
        return pending_blocks.closed_answer(request)
    if decision.result is DecisionResult.NOT_ON_REQUEST_MESSAGE:
        return f":no_entry: {decision.message}"
    return f":no_entry: {decision.message} Nothing changed."
