"""Approve and Reject buttons on a request message."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.service import DecisionResult
from bot.slack import blocks

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


def register(app: App, context: SlackContext) -> None:
    @app.action(blocks.APPROVE_ACTION)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        _decide(context, body, ack, respond, approve=True)

    @app.action(blocks.REJECT_ACTION)
    def reject(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        _decide(context, body, ack, respond, approve=False)


def _decide(context: SlackContext, body: dict[str, Any], ack: Ack, respond: Respond, *, approve: bool) -> None:
    """Record the decision, then acknowledge: a click Slack saw acknowledged is never lost to a crash."""
    user_id = str(body.get("user", {}).get("id", ""))
    raw_id = str((body.get("actions") or [{}])[0].get("value", ""))

    def tell(text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    if not raw_id.isdigit() or len(raw_id) > 18:
        ack()
        tell(":x: This button does not belong to a grant request.")
        return
    try:
        decision = context.service.decide(int(raw_id), user_id, approve=approve)  # one short transaction
    except Exception:
        ack()
        log.exception("recording a decision on request #%s failed", raw_id)
        tell(f":warning: Something went wrong; request #{raw_id} is safe and unchanged. Please click again.")
        return
    ack()
    request = decision.request
    if decision.result in (DecisionResult.APPROVED, DecisionResult.REJECTED):
        context.delivery.deliver_due()  # update the message now, from this thread, rather than at the next poll
    elif decision.result is DecisionResult.ALREADY_DECIDED and request:
        by = f" by <@{request.decided_by}>" if request.decided_by else ""
        tell(f"Request #{request.id} is already {request.state.value}{by}.")
    else:
        tell(f":no_entry: {decision.message} Nothing changed.")
