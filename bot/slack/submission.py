"""Posting a stored request for approval and telling the requester: shared by the command and the modal."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk.errors import SlackApiError

from bot.requests import GrantRequest
from bot.slack import blocks
from bot.slack.messenger import SlackMessenger

log = logging.getLogger(__name__)

Reply = Callable[[str], None]


def announce_request(messenger: SlackMessenger, request: GrantRequest, reply: Reply) -> None:
    """Post the request in the approval channel and tell the requester where it is."""
    tag = blocks.environment_tag(request.mturk_env)
    channel = f"<#{messenger.approval_channel}>"
    try:
        link = messenger.post_request(request)
    except SlackApiError as error:
        log.error("request #%s stored but not posted: %s", request.id, error.response.get("error"))
        reply(
            f"{tag} Request #{request.id} is saved, but it could not be posted to {channel} "
            f"({error.response.get('error')}). Is the app a member of that channel?"
        )
        return
    where = f"<{link}|in the approval channel>" if link else f"in {channel}"
    reply(
        f"{tag} Request #{request.id} to grant {blocks.qualification_text(request)} to {request.worker_count} "
        f"worker(s) is waiting for approval {where}."
    )
