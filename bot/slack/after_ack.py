"""Work a listener hands on after its ack (checking with MTurk, posting the request), and what happens when
it fails: it runs off Bolt's listener threads, and a failure never vanishes in the pool. It is logged with
who asked and which request, and the person is told where their request stands, where they asked or by DM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.requests import GrantRequest
from bot.slack import blocks
from bot.slack.submission import Reply, where_it_stands

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


@dataclass
class Requester:
    """Who waits for an answer, how to answer them, and their request once it is stored."""

    user_id: str
    reply: Reply
    request: GrantRequest | None = None


def run_after_ack(context: SlackContext, requester: Requester, job: Callable[[], None]) -> None:
    """Run `job` on the after-ack pool; if it fails, log it and tell the requester what happened."""
    context.after_ack.submit(_run, context, requester, job)


def _run(context: SlackContext, requester: Requester, job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:
        request = requester.request
        log.exception(
            "work after the ack for %s failed (request #%s)",
            requester.user_id,
            request.id if request else "not stored",
        )
        tell(context, requester, _failure_note(context, request))


def tell(context: SlackContext, requester: Requester, text: str) -> None:
    """Answer where the requester asked, else by DM; log when neither works."""
    try:
        requester.reply(text)
        return
    except Exception as error:
        log.warning("could not answer %s where they asked (%s); sending a DM", requester.user_id, type(error).__name__)
    try:
        context.messenger.client.chat_postMessage(channel=requester.user_id, text=text)
    except Exception:
        log.exception("could not tell %s what happened, by DM either", requester.user_id)


def _failure_note(context: SlackContext, request: GrantRequest | None) -> str:
    if request is None:
        tag = blocks.environment_tag(context.service.gateway.environment)
        return f"{tag} :warning: Something went wrong; nothing was posted. Please try again."
    try:
        # No permalink this time: the failure may have been Slack's answer to that very call.
        return f":warning: Something went wrong along the way.\n{where_it_stands(context, request, with_link=False)}"
    except Exception:
        log.exception("could not read where request #%s stands", request.id)
        tag = blocks.environment_tag(request.mturk_env)
        return (
            f"{tag} :warning: Something went wrong posting request #{request.id}; it is saved and will be posted "
            f"in <#{context.messenger.approval_channel}> when Slack answers."
        )
