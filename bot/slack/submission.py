"""Posting a stored request for approval and telling the requester: shared by the command and the modal."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.requests import GrantRequest
from bot.slack import blocks

if TYPE_CHECKING:
    from bot.slack import SlackContext

Reply = Callable[[str], None]


def announce_request(context: SlackContext, request: GrantRequest, reply: Reply) -> None:
    """Post the request in the approval channel now, and tell the requester where it is."""
    tag = blocks.environment_tag(request.mturk_env)
    channel = f"<#{context.messenger.approval_channel}>"
    if not context.delivery.deliver_submission(request.id):
        reply(
            f"{tag} Request #{request.id} is saved, but Slack did not take the approval message yet; it will be "
            f"posted in {channel} as soon as Slack does. (If this persists: is the app a member of that channel?)"
        )
        return
    posted = context.service.store.get(request.id) or request
    link = context.messenger.permalink(posted)
    where = f"<{link}|in the approval channel>" if link else f"in {channel}"
    reply(
        f"{tag} Request #{request.id} to grant {blocks.qualification_text(request)} to {request.worker_count} "
        f"worker(s) is waiting for approval {where}."
    )
