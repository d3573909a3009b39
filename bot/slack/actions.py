"""Approve, Reject and Cancel buttons on a request message, and Retry failed and Undo on its result summary.

Reject records nothing at the click: it opens a form for the reason (bot/slack/decisions.py), whose
submission rejects.

Each listener passes on where Slack says the button was (ClickOrigin); the service decides whether that is a
surface the app rendered for the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltRequest, BoltResponse, Respond
from slack_bolt.middleware import Middleware
from slack_sdk import WebClient

from bot.service import ClickOrigin, DecisionResult
from bot.slack import blocks, decisions
from bot.slack.after_ack import Requester, run_after_ack
from bot.slack.cancel import cancel_answer
from bot.slack.preview_progress import preview_request
from bot.slack.submission import announce_request

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


def register(app: App, context: SlackContext) -> None:
    app.middleware(RefuseMalformedActions())
    decisions.register(app, context)

    @app.action(blocks.APPROVE_ACTION)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        _approve(context, body, ack, respond)

    @app.action(blocks.REJECT_ACTION)
    def reject(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        _ask_to_reject(context, body, ack, respond, client)

    @app.action(blocks.CANCEL_ACTION)
    def cancel(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        _cancel(context, body, ack, respond)

    @app.action(blocks.RETRY_ACTION)
    def retry_failed(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        _retry(context, body, ack, respond)

    @app.action(blocks.UNDO_ACTION)
    def undo(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        _undo(context, body, ack, respond)


def _undo(context: SlackContext, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
    """Store the undo request (exactly once) before acknowledging; its preview and posting run after the ack."""
    user_id = _user_id(body)
    request_id = _clicked_request_id(body)
    if request_id is None:
        ack()
        _tell(respond, ":x: This button does not belong to a grant request.")
        return
    try:
        decision = context.service.undo(request_id, user_id, origin=_click_origin(body))
    except Exception:
        ack()
        log.exception("undoing request #%s failed", request_id)
        _tell(
            respond, f":warning: Something went wrong; request #{request_id} is safe and unchanged. Please click again."
        )
        return
    ack()
    undo = decision.request
    if decision.result is not DecisionResult.UNDO_REQUESTED or undo is None:
        if decision.result is DecisionResult.WRONG_ENVIRONMENT:
            context.delivery.wake()  # the thread's note
        _tell(respond, f":no_entry: {decision.message} Nothing changed.")
        return
    context.delivery.wake()  # the original's thread: "Undo requested as #M"
    requester = Requester(user_id, lambda text: _tell(respond, text), undo)

    def preview_and_announce() -> None:
        requester.request = preview_request(context, undo)
        announce_request(context, requester.request, requester.reply)

    run_after_ack(context, requester, preview_and_announce)


def _retry(context: SlackContext, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
    user_id = _user_id(body)
    request_id, _, round_ = str((body.get("actions") or [{}])[0].get("value", "")).partition(":")
    if not (_is_number(request_id) and _is_number(round_) and len(request_id) <= 18 and len(round_) <= 9):
        ack()
        _tell(respond, ":x: This button does not belong to a grant request.")
        return
    decision = context.service.retry_failed(int(request_id), int(round_), user_id, origin=_click_origin(body))
    ack()
    request = decision.request
    if decision.result is DecisionResult.APPROVED:
        context.delivery.wake()
    elif decision.result is DecisionResult.NOT_ON_REQUEST_MESSAGE:
        _tell(respond, f":no_entry: {decision.message}")
    elif decision.result is DecisionResult.WRONG_ENVIRONMENT:
        context.delivery.wake()  # the thread's note
        _tell(respond, f":no_entry: {decision.message}")
    elif decision.result is DecisionResult.ALREADY_DECIDED and request:
        _tell(respond, f"Round {round_} of request #{request.id} was already retried or has nothing to retry.")
    else:
        _tell(respond, f":no_entry: {decision.message} Nothing changed.")


def _tell(respond: Respond, text: str) -> None:
    # Best effort, after ack(): Bolt turns a listener's exception after ack() into a 404 three seconds later.
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception as error:
        log.warning("could not answer a click on the request message: %s", error)


def _user_id(body: dict[str, Any]) -> str:
    user = body.get("user")
    return str(user.get("id", "")) if isinstance(user, dict) else ""


def _click_origin(body: dict[str, Any]) -> ClickOrigin:
    """Where Slack says the button was clicked: a message's channel and ts, or a view's ID."""
    container = body.get("container")
    if not isinstance(container, dict):
        return ClickOrigin()
    if container.get("type") == "message":
        return ClickOrigin.message(str(container.get("channel_id") or ""), str(container.get("message_ts") or ""))
    if container.get("type") == "view":
        view_id = str(container.get("view_id") or "")
        return ClickOrigin.home(view_id) if _is_own_home(body, view_id) else ClickOrigin.view(view_id)
    return ClickOrigin()


def _is_own_home(body: dict[str, Any], view_id: str) -> bool:
    """Whether the clicked view is this app's Home tab: Slack's signed payload (sent only to this app, whose ID
    is api_app_id) says the view is of type home, has that ID and was made by this app."""
    view = body.get("view")
    if not isinstance(view, dict) or not view_id or view.get("id") != view_id or view.get("type") != "home":
        return False
    app_id = str(body.get("api_app_id") or "")
    return bool(app_id) and view.get("app_id") == app_id


def _clicked_request_id(body: dict[str, Any]) -> int | None:
    """The request a button names in its value, or None when the value is not a request number."""
    raw_id = str((body.get("actions") or [{}])[0].get("value", ""))
    return int(raw_id) if _is_number(raw_id) and len(raw_id) <= 18 else None


def _is_number(text: str) -> bool:
    """ASCII digits only: "²".isdigit() is true, but int("²") fails."""
    return text.isascii() and text.isdigit()


class RefuseMalformedActions(Middleware):
    """Answers 400 to block_actions without an action object, where Bolt's own action matching fails with 500.

    A class, not a function: Bolt builds a function middleware's arguments from the first action too.
    """

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        if req.body.get("type") == "block_actions" and not _has_action(req.body):
            return BoltResponse(status=400, body="")
        return next()


def _has_action(body: dict[str, Any]) -> bool:
    actions = body.get("actions")
    return isinstance(actions, list) and bool(actions) and isinstance(actions[0], dict) and "action_id" in actions[0]


def _approve(context: SlackContext, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
    """Record the approval, then acknowledge: a click Slack saw acknowledged is never lost to a crash."""
    user_id = _user_id(body)
    request_id = _clicked_request_id(body)
    if request_id is None:
        ack()
        _tell(respond, ":x: This button does not belong to a grant request.")
        return
    origin = _click_origin(body)
    try:
        decision = context.service.decide(request_id, user_id, approve=True, origin=origin)  # one short transaction
    except Exception:
        ack()
        log.exception("recording a decision on request #%s failed", request_id)
        _tell(
            respond, f":warning: Something went wrong; request #{request_id} is safe and unchanged. Please click again."
        )
        return
    ack()
    if decision.result in (DecisionResult.APPROVED, DecisionResult.APPROVAL_ADDED, DecisionResult.WRONG_ENVIRONMENT):
        # The delivery thread updates the message (or notes the environment) now; this thread is free for acks.
        context.delivery.wake()
    if answer := decisions.decision_answer(decision):
        _tell(respond, answer)


def _ask_to_reject(context: SlackContext, body: dict[str, Any], ack: Ack, respond: Respond, client: WebClient) -> None:
    """Check the click as a rejection would be checked, acknowledge, then open the form for the reason."""
    user_id = _user_id(body)
    request_id = _clicked_request_id(body)
    if request_id is None:
        ack()
        _tell(respond, ":x: This button does not belong to a grant request.")
        return
    origin = _click_origin(body)
    try:
        refusal = context.service.rejection_refusal(request_id, user_id, origin=origin)  # one short read
    except Exception:
        ack()
        log.exception("checking a rejection of request #%s failed", request_id)
        _tell(
            respond, f":warning: Something went wrong; request #{request_id} is safe and unchanged. Please click again."
        )
        return
    ack()
    if refusal is not None:
        _tell(respond, decisions.decision_answer(refusal) or f"Request #{request_id} is unchanged.")
        return
    if problem := decisions.ask_for_reason(context, client, str(body.get("trigger_id") or ""), request_id, origin):
        _tell(respond, problem)


def _cancel(context: SlackContext, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
    """Record the cancel, then acknowledge, as for a decision; only the requester's click counts."""
    request_id = _clicked_request_id(body)
    if request_id is None:
        ack()
        _tell(respond, ":x: This button does not belong to a grant request.")
        return
    try:
        decision = context.service.cancel(request_id, _user_id(body), origin=_click_origin(body))
    except Exception:
        ack()
        log.exception("cancelling request #%s failed", request_id)
        _tell(
            respond, f":warning: Something went wrong; request #{request_id} is safe and unchanged. Please click again."
        )
        return
    ack()
    if decision.result is DecisionResult.CANCELLED:
        context.delivery.wake()  # the message's buttons give way to who cancelled it
    else:
        _tell(respond, cancel_answer(decision))
