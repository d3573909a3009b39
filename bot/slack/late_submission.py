"""The grant modal's answer when its submission's work (the file read, the request stored) outlived the ack's
deadline (bot/slack/deadline.py). The modal was already turned into "reading your file"; once the work is done
it says the outcome: the request is saved (and the preview and posting go on as after a prompt answer), or
what was wrong, with nothing saved. What was wrong is also told where the requester asked (or by DM): they may
have closed the modal, and then views.update answers not_found and only that message reaches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from bot.requests import GrantRequest
from bot.slack import submission_blocks
from bot.slack.after_ack import Requester, run_after_ack, tell

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)

# A submission's outcome: the stored request, or what is wrong with it by the modal's block IDs (as inline errors).
Outcome = GrantRequest | dict[str, str]


def answer_late(
    context: SlackContext,
    requester: Requester,
    view_id: str,
    submitting: Future[Outcome],
    go_on: Callable[[GrantRequest], None],
) -> None:
    """When `submitting` is done, on the after-ack pool: show its outcome in the modal, tell what was wrong, and
    `go_on` with a stored request. Its failures are logged and told by run_after_ack, as any after-ack work's."""
    submitting.add_done_callback(
        lambda done: run_after_ack(context, requester, lambda: _finish(context, requester, view_id, done, go_on))
    )


def _finish(
    context: SlackContext,
    requester: Requester,
    view_id: str,
    done: Future[Outcome],
    go_on: Callable[[GrantRequest], None],
) -> None:
    env = context.service.gateway.environment
    try:
        outcome = done.result()
    except Exception:
        _show(context, view_id, submission_blocks.failed_view(env))
        raise
    if isinstance(outcome, GrantRequest):
        requester.request = outcome
        _show(context, view_id, submission_blocks.saved_view(outcome, context.messenger.approval_channel))
        go_on(outcome)
        return
    _show(context, view_id, submission_blocks.refused_view(env, outcome))
    tell(context, requester, submission_blocks.refused_text(env, outcome))


def _show(context: SlackContext, view_id: str, view: dict[str, Any]) -> None:
    """Update the modal if it is still open; the requester's message does not depend on it."""
    try:
        context.messenger.client.views_update(view_id=view_id, view=view)
    except Exception as error:
        log.info("could not update the grant modal %s (%s); the requester is told by message", view_id, error)
