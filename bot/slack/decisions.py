"""Approve and Reject: what the person deciding is told, and Reject's form for the reason.

Reject asks for a reason in a modal before anything changes. When the reason comes back, every check made at
the click (approver, the request's own message, still pending) is made again, since someone may have
approved or rejected the request while the form was open.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.requests import GrantRequest, RequestState
from bot.service import ClickOrigin, Decision, DecisionResult
from bot.slack import blocks, pending_blocks

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)
_MAX_REQUEST_ID_DIGITS = 18


def register(app: App, context: SlackContext) -> None:
    @app.view(blocks.REJECT_MODAL_CALLBACK)
    def reason_given(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        _reject_with_reason(context, ack, body, view)


def decision_answer(decision: Decision) -> str | None:
    """What the person who approved or rejected is told, privately; None when the message itself says it."""
    request = decision.request
    if decision.result in (DecisionResult.APPROVED, DecisionResult.REJECTED):
        return None
    if decision.result is DecisionResult.APPROVAL_ADDED and request:
        return (
            f":white_check_mark: Your approval of request #{request.id} counts ({_approvals(decision, request)}); "
            f"it runs once {_more(decision, request)} approve too."
        )
    if decision.result is DecisionResult.ALREADY_APPROVED and request:
        return (
            f"You have already approved request #{request.id} ({_approvals(decision, request)}); it waits for "
            f"{_more(decision, request)}. Nothing changed."
        )
    if decision.result in (DecisionResult.NOT_ON_REQUEST_MESSAGE, DecisionResult.WRONG_ENVIRONMENT):
        return f":no_entry: {decision.message}"
    if decision.result is DecisionResult.ALREADY_DECIDED and request:
        if request.state in (RequestState.CANCELLED, RequestState.EXPIRED):
            return pending_blocks.closed_answer(request)
        by = f" by <@{request.decided_by}>" if request.decided_by else ""
        return f"Request #{request.id} is already {request.state.value}{by}."
    return f":no_entry: {decision.message} Nothing changed."


def _approvals(decision: Decision, request: GrantRequest) -> str:
    return f"{len(decision.approvers)} of {request.approvals_required}"


def _more(decision: Decision, request: GrantRequest) -> str:
    more = request.approvals_required - len(decision.approvers)
    return "one more approver" if more == 1 else f"{more} more approvers"


def ask_for_reason(
    context: SlackContext, client: WebClient, trigger_id: str, request_id: int, origin: ClickOrigin
) -> str | None:
    """Open Reject's form with the click's trigger (it lives 3 seconds); what to tell the approver if Slack
    would not open it, else None."""
    request = context.service.store.get(request_id)
    if request is None:
        return f":no_entry: Request #{request_id} does not exist. Nothing changed."
    # Where Reject was clicked goes with the form, so its submission is held to the same surface rule: the request's
    # message, or the app's own Home tab.
    metadata = json.dumps(
        {
            "request_id": request_id,
            "channel_id": origin.channel_id,
            "message_ts": origin.message_ts,
            "home_view_id": origin.view_id if origin.own_home else "",
        }
    )
    view = blocks.reject_modal(request, metadata, reason_required=context.reject_reason_required)
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except Exception as error:  # after the ack: answered, never raised (see actions._tell)
        said = error.response.get("error") if isinstance(error, SlackApiError) else type(error).__name__
        log.warning("could not open the form to reject request #%s: %s", request_id, said)
        return (
            f":warning: Slack did not open the form for the reason (`{said}`); request #{request_id} is unchanged. "
            "Please click Reject again."
        )
    return None


def _reject_with_reason(context: SlackContext, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
    """Record the rejection with its reason, then acknowledge (closing the form), as a click does."""
    user = body.get("user")
    user_id = str(user.get("id", "")) if isinstance(user, dict) else ""
    request_id, origin = _form_request(view)

    def answer(text: str) -> None:  # the form turns into the answer: there is nothing left to submit
        ack(response_action="update", view=blocks.reject_answer_view(text))

    if request_id is None:
        answer(":x: This form does not belong to a grant request; nothing changed.")
        return
    reason = _reason(view)
    if context.reject_reason_required and not reason:
        ack(
            response_action="errors",
            errors={blocks.REJECT_REASON_BLOCK: "Give a reason: the requester and the thread are told why."},
        )
        return
    try:
        decision = context.service.decide(request_id, user_id, approve=False, origin=origin, reason=reason)
    except Exception:
        log.exception("recording the rejection of request #%s failed", request_id)
        answer(f":warning: Something went wrong; request #{request_id} is safe and unchanged. Please try again.")
        return
    if decision.result is DecisionResult.REJECTED:
        ack()
        context.delivery.wake()  # the message, the thread and the requester's DM
        return
    answer(decision_answer(decision) or f"Request #{request_id} is unchanged.")


def _form_request(view: dict[str, Any]) -> tuple[int | None, ClickOrigin]:
    """The request and where Reject was clicked (its message, or the app's Home tab), as the app wrote them into
    the form (Slack returns private_metadata only in requests it signs)."""
    try:
        metadata = json.loads(str(view.get("private_metadata") or ""))
        raw_id = str(metadata["request_id"])
        home_view_id = str(metadata.get("home_view_id") or "")
        origin = (
            ClickOrigin.home(home_view_id)
            if home_view_id
            else ClickOrigin.message(str(metadata.get("channel_id") or ""), str(metadata.get("message_ts") or ""))
        )
    except (ValueError, TypeError, KeyError):
        return None, ClickOrigin()
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= _MAX_REQUEST_ID_DIGITS):
        return None, ClickOrigin()
    return int(raw_id), origin


def _reason(view: dict[str, Any]) -> str:
    values = (view.get("state") or {}).get("values") or {}
    typed = ((values.get(blocks.REJECT_REASON_BLOCK) or {}).get("value") or {}).get("value")
    return str(typed or "").strip()[: blocks.REJECT_REASON_INPUT_LIMIT]
