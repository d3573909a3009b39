"""Approve and Reject buttons on a request message."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.service import DecisionResult, GrantService
from bot.slack import blocks
from bot.slack.messenger import SlackMessenger

log = logging.getLogger(__name__)


def register(app: App, service: GrantService, messenger: SlackMessenger) -> None:
    @app.action(blocks.APPROVE_ACTION)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        _decide(service, messenger, body, respond, approve=True)

    @app.action(blocks.REJECT_ACTION)
    def reject(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        _decide(service, messenger, body, respond, approve=False)


def _decide(
    service: GrantService, messenger: SlackMessenger, body: dict[str, Any], respond: Respond, *, approve: bool
) -> None:
    user_id = str(body.get("user", {}).get("id", ""))
    raw_id = str((body.get("actions") or [{}])[0].get("value", ""))
    if not raw_id.isdigit() or len(raw_id) > 18:
        respond(
            text=":x: This button does not belong to a grant request.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    decision = service.decide(int(raw_id), user_id, approve=approve)
    request = decision.request
    if decision.result is DecisionResult.APPROVED and request:
        messenger.request_approved(request)
    elif decision.result is DecisionResult.REJECTED and request:
        messenger.request_rejected(request)
    elif decision.result is DecisionResult.ALREADY_DECIDED and request:
        by = f" by <@{request.decided_by}>" if request.decided_by else ""
        respond(
            text=f"Request #{request.id} is already {request.state.value}{by}.",
            response_type="ephemeral",
            replace_original=False,
        )
    else:
        respond(
            text=f":no_entry: {decision.message} Nothing changed.",
            response_type="ephemeral",
            replace_original=False,
        )
