"""Block Kit for the App Home: the Home tab each user sees, and the help answered in the Messages tab.

Pure functions from bot/home.py's HomePage to a view; no network calls here. A pending request on an
approver's Home carries the very buttons of its approval message (blocks.decision_buttons: same action IDs and
values), so the same listeners and rules handle a click in either place. At most 10 + 20 requests are listed,
well within a Home tab's 100 blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.config import MTurkEnvironment
from bot.home import Health, HomePage
from bot.lookups import RequestList
from bot.slack import lookup_blocks
from bot.slack.blocks import Block, decision_buttons, environment_line, escape, slack_date, truncate

NEW_REQUEST_ACTION = "home_new_request"
HOME_BLOCK_LIMIT = 100

Links = Mapping[int, str | None]

ABOUT = (
    "*grant-qual* grants Amazon Mechanical Turk qualifications after an approver approves them in Slack. "
    "Every request, decision and per-worker result is recorded."
)


def home_view(page: HomePage, env: MTurkEnvironment, links: Links) -> dict[str, Any]:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "grant-qual"}},
        _section(ABOUT),
        _section(environment_line(env)),
        _context(health_line(page.health)),
    ]
    if page.may_request:
        blocks.append(
            {
                "type": "actions",
                "block_id": "home_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": NEW_REQUEST_ACTION,
                        "text": {"type": "plain_text", "text": "New request"},
                        "style": "primary",
                    }
                ],
            }
        )
    if page.requests is None:
        blocks.append(_section(":no_entry: You are not on the requesters' or approvers' list of this app."))
        return _view(blocks)
    blocks.append({"type": "divider"})
    blocks.append(_section("*Your requests* (newest first)"))
    blocks += _request_lines(page.requests.recent, links, "You have not requested anything yet.", buttons=False)
    if page.requests.waiting is not None:
        blocks.append({"type": "divider"})
        blocks.append(_section("*Waiting for a decision* (oldest first)"))
        blocks += _request_lines(page.requests.waiting, links, "No request is waiting for a decision.", buttons=True)
    return _view(blocks[:HOME_BLOCK_LIMIT])


def health_line(health: Health) -> str:
    if health.mturk_reachable and health.balance is not None:
        mturk = f":large_green_circle: MTurk reachable · balance ${health.balance:,.2f}"
    else:
        mturk = f":red_circle: MTurk not reachable: {truncate(escape(health.problem), 300)}"
    last = health.last_grant
    if last is None or last.finished_at is None:
        grant = "no grant finished yet"
    else:
        grant = f"last grant #{last.id} finished {slack_date(last.finished_at)}"
    return f"{mturk} · {grant}"


def dm_help(env: MTurkEnvironment) -> str:
    """The answer to a message sent to the app: it reads no DMs, so it says where things are done."""
    return (
        f"Hi! I don't read messages here. Use `/grant-qual` (or the *New request* button in my Home tab, or the "
        f"shortcut *Grant a qualification*) to request a grant in the {env.label}; `/grant-qual help` "
        "lists everything. I DM you here when your request is decided and when it finishes."
    )


def _request_lines(requests: RequestList, links: Links, none: str, *, buttons: bool) -> list[Block]:
    if not requests.statuses:
        return [_context(none)]
    lines: list[Block] = []
    for status in requests.statuses:
        lines.append(_section(lookup_blocks.request_line(status, links.get(status.request.id))))
        if buttons:
            lines.append(decision_buttons(status.request))
    if requests.left_out:
        lines.append(_context(f"… and {requests.left_out} more (`/grant-qual mine`)."))
    return lines


def _view(blocks: list[Block]) -> dict[str, Any]:
    return {"type": "home", "blocks": blocks}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, 3000)}]}
