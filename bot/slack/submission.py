"""Posting a stored request for approval and telling the requester: shared by the command and the modal."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.requests import DeliveryState, EventKind, GrantRequest
from bot.slack import blocks

if TYPE_CHECKING:
    from bot.slack import SlackContext

Reply = Callable[[str], None]


def announce_request(context: SlackContext, request: GrantRequest, reply: Reply) -> None:
    """Post the request in the approval channel now, and tell the requester where it stands."""
    context.delivery.deliver_submission(request.id)
    reply(where_it_stands(context, request))


def where_it_stands(context: SlackContext, request: GrantRequest, *, with_link: bool = True) -> str:
    """For the requester: their request waits for approval (with a link to it), waits for Slack to answer,
    or was refused by Slack for good (the outbox gave up), so nobody can approve it."""
    tag = blocks.environment_tag(request.mturk_env)
    channel = f"<#{context.messenger.approval_channel}>"
    submitted = next((e for e in context.service.store.events(request.id) if e.kind is EventKind.SUBMITTED), None)
    state = submitted.delivery_state if submitted else DeliveryState.PENDING
    if state is DeliveryState.DELIVERED:
        link = context.messenger.permalink(context.service.store.get(request.id) or request) if with_link else None
        where = f"<{link}|in the approval channel>" if link else f"in {channel}"
        return f"{tag} Request #{request.id} {blocks.request_what(request)} is waiting for approval {where}."
    if state is DeliveryState.FAILED:
        error = blocks.truncate(blocks.escape(submitted.last_error or "") if submitted else "", 100)
        return (
            f"{tag} :warning: Request #{request.id} is saved, but Slack refused its approval message (`{error}`), "
            f"so it was not posted in {channel} and nobody can approve it. Is the app a member of that channel? "
            "Once that is fixed, request again."
        )
    return (
        f"{tag} Request #{request.id} is saved, but Slack did not take the approval message yet; it will be "
        f"posted in {channel} as soon as Slack does. (If this persists: is the app a member of that channel?)"
    )
