"""/grant-qual status, history, mine (or list), export and help: answered ephemerally, after the ack.

The look-ups and the usage are for requesters and approvers alike, so they are answered here, before the
check that only requesters pass (commands.handle).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from slack_bolt import Respond

from bot.export import RequestExport
from bot.lookups import Lookups
from bot.requests import (
    HELP_WORDS,
    ExportLookup,
    GrantRequest,
    HelpWanted,
    HistoryLookup,
    InvalidRequest,
    MineLookup,
    StatusLookup,
    is_lookup,
    parse_command_text,
)
from bot.service import NotAllowed
from bot.slack import blocks, lookup_blocks
from bot.slack.export import send_export

if TYPE_CHECKING:
    from bot.slack import SlackContext


def answers(text: str) -> bool:
    """Whether this module answers `text`: a look-up or help."""
    return is_lookup(text) or text.strip().lower() in HELP_WORDS


def answer(context: SlackContext, user_id: str, text: str, respond: Respond) -> None:
    """Answer a look-up or help for `user_id`, only to them."""

    def say(message: str, message_blocks: list[blocks.Block] | None = None) -> None:
        respond(text=message, blocks=message_blocks, response_type="ephemeral")

    lookups = Lookups(context.service.store, context.service.policy)
    env = context.service.gateway.environment
    try:
        lookups.ensure_may_look_up(user_id)
        wanted = parse_command_text(text, max_workers=context.max_workers)
        if isinstance(wanted, HelpWanted):
            say(blocks.usage_text(env, context.max_workers))
        elif isinstance(wanted, StatusLookup):
            status = lookups.status(user_id, wanted.request_id)
            if status is None:
                say(lookup_blocks.no_such_request(wanted.request_id))
            else:
                say(*lookup_blocks.status_answer(status, context.messenger.permalink(status.request)))
        elif isinstance(wanted, HistoryLookup):
            history = lookups.history(user_id, wanted.worker_id)
            links = _links(context, (entry.request for entry in history.entries))
            say(*lookup_blocks.history_answer(history, links))
        elif isinstance(wanted, MineLookup):
            mine = lookups.mine(user_id)
            shown = [s.request for s in mine.recent.statuses]
            shown += [s.request for s in mine.waiting.statuses] if mine.waiting else []
            say(*lookup_blocks.mine_answer(mine, _links(context, shown)))
        elif isinstance(wanted, ExportLookup):
            export = RequestExport(context.service.store, context.service.policy)
            send_export(export, context.messenger.client, user_id, wanted, say)
    except NotAllowed as refusal:
        say(f":no_entry: {refusal}")
    except InvalidRequest as invalid:
        problems = "\n".join(blocks.escape(message) for message in invalid.errors.values())
        say(f":x: {problems} (`/grant-qual help` lists the commands.)")


def _links(context: SlackContext, requests: Iterable[GrantRequest]) -> dict[int, str | None]:
    """A link to each request's approval message (None where Slack gives none), one call per request."""
    links: dict[int, str | None] = {}
    for request in requests:
        if request.id not in links:
            links[request.id] = context.messenger.permalink(request)
    return links
