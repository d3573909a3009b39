"""Extend and Revoke now on an expiring grant's message, and the Extend modal's submission.

Thin: each listener passes on who clicked and where (ClickOrigin); bot/expiry.py decides and records.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.requests import InvalidRequest
from bot.service import Decision, DecisionResult
from bot.slack import expiry_blocks
from bot.slack.actions import _click_origin, _clicked_request_id, _is_number, _tell, _user_id

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


def register(app: App, context: SlackContext) -> None:
    expiry = context.expiry
    if expiry is None:
        return

    @app.action(expiry_blocks.REVOKE_NOW_ACTION)
    def revoke_now(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        """Store the expiry request (exactly once) before acknowledging; the executor revokes after."""
        request_id = _clicked_request_id(body)
        if request_id is None:
            ack()
            _tell(respond, ":x: This button does not belong to a grant request.")
            return
        try:
            decision = expiry.revoke_now(request_id, _user_id(body), origin=_click_origin(body))
        except Exception:
            ack()
            log.exception("revoking request #%s now failed", request_id)
            _tell(
                respond,
                f":warning: Something went wrong; request #{request_id} is safe and unchanged. Please click again.",
            )
            return
        ack()
        context.delivery.wake()
        if decision.result is not DecisionResult.APPROVED:
            _tell(respond, f":no_entry: {decision.message} Nothing changed.")

    @app.action(expiry_blocks.EXTEND_ACTION)
    def extend(ack: Ack, body: dict[str, Any], respond: Respond, client: Any) -> None:
        """Open the Extend modal for an approver clicking on the grant's own message."""
        ack()
        request_id = _clicked_request_id(body)
        if request_id is None:
            _tell(respond, ":x: This button does not belong to a grant request.")
            return
        allowed = expiry.may_extend(request_id, _user_id(body), origin=_click_origin(body))
        if isinstance(allowed, Decision):
            _tell(respond, f":no_entry: {allowed.message} Nothing changed.")
            return
        client.views_open(trigger_id=body.get("trigger_id"), view=expiry_blocks.extend_modal(allowed))

    @app.view(expiry_blocks.EXTEND_MODAL_CALLBACK)
    def extend_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        raw_id = str(view.get("private_metadata") or "")
        values = view.get("state", {}).get("values", {})
        typed = str((values.get(expiry_blocks.EXTEND_BLOCK, {}).get("value", {}) or {}).get("value") or "")
        if not _is_number(raw_id) or len(raw_id) > 18:
            ack(response_action="errors", errors={expiry_blocks.EXTEND_BLOCK: "This form belongs to no request."})
            return
        try:
            decision = expiry.extend(int(raw_id), str(body.get("user", {}).get("id", "")), typed)
        except InvalidRequest as invalid:
            ack(response_action="errors", errors={expiry_blocks.EXTEND_BLOCK: " ".join(invalid.errors.values())})
            return
        if decision.result is not DecisionResult.APPROVED:
            ack(response_action="errors", errors={expiry_blocks.EXTEND_BLOCK: f"{decision.message} Nothing changed."})
            return
        ack()
        context.delivery.wake()  # the message's new date, and the thread's note
