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
        ack()
        _decide(context, body, respond, approve=True)

    @app.action(blocks.REJECT_ACTION)
    def reject(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        _decide(context, body, respond, approve=False)


def _decide(context: SlackContext, body: dict[str, Any], respond: Respond, *, approve: bool) -> None:
    user_id = str(body.get("user", {}).get("id", ""))
    raw_id = str((body.get("actions") or [{}])[0].get("value", ""))

    def tell(text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    if not raw_id.isdigit() or len(raw_id) > 18:
        tell(":x: This button does not belong to a grant request.")
        return
    decision = context.service.decide(int(raw_id), user_id, approve=approve)
    request = decision.request
    if decision.result in (DecisionResult.APPROVED, DecisionResult.REJECTED):
        context.delivery.deliver_due()  # update the message now, from this thread, rather than at the next poll
    elif decision.result is DecisionResult.ALREADY_DECIDED and request:
        by = f" by <@{request.decided_by}>" if request.decided_by else ""
        tell(f"Request #{request.id} is already {request.state.value}{by}.")
    else:
        tell(f":no_entry: {decision.message} Nothing changed.")
