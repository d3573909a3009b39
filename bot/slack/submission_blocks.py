"""Block Kit for a grant modal submission that outlived Slack's answer window (bot/slack/deadline.py): the modal
it turns into at once (being read), then what it says once the work is done (saved, or what was wrong), and
the requester's message about what was wrong. Pure functions; no network calls here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.config import MTurkEnvironment
from bot.requests import GrantRequest
from bot.slack.blocks import (
    SECTION_TEXT_LIMIT,
    environment_line,
    environment_tag,
    escape,
    grant_modal,
    request_what,
    truncate,
)

TITLE = "Grant qualification"
# One field's problems in the requester's message: several fields still fit in a message's first 4,000.
REPLY_ERROR_LIMIT = 1000
AGAIN = "Open the form again (`/grant-qual`, or the shortcut) and submit it with that corrected."


def reading_view(env: MTurkEnvironment) -> dict[str, Any]:
    """What the form says while its workers (usually a big file) are still being read: nothing to submit, and
    a message will follow."""
    return _view(
        env,
        ":hourglass_flowing_sand: *Reading and checking your workers.* A big file takes a moment. If all is "
        "well the request is saved and posted for approval; either way you will get a message saying how it "
        "went. You can close this.",
    )


def saved_view(request: GrantRequest, approval_channel: str) -> dict[str, Any]:
    return _view(
        request.mturk_env,
        f":white_check_mark: Request #{request.id} is saved: {request_what(request)}. It is checked with MTurk, "
        f"then posted in <#{approval_channel}> for approval; you will get a message saying where it stands.",
    )


def refused_view(env: MTurkEnvironment, errors: Mapping[str, str]) -> dict[str, Any]:
    """What was wrong, under each field's label as the form shows it, and how to go on. Nothing was saved."""
    return _view(env, ":warning: *Nothing was saved.* Please fix this:", *_problems(errors, SECTION_TEXT_LIMIT), AGAIN)


def refused_text(env: MTurkEnvironment, errors: Mapping[str, str]) -> str:
    """The same, for the requester where they asked: the form may have been closed already."""
    problems = "\n".join(_problems(errors, REPLY_ERROR_LIMIT))
    return f"{environment_tag(env)} :warning: Your request was not saved. Please fix this:\n{problems}\n{AGAIN}"


def failed_view(env: MTurkEnvironment) -> dict[str, Any]:
    return _view(env, ":warning: Something went wrong; you will get a message saying where your request stands.")


def _problems(errors: Mapping[str, str], limit: int) -> list[str]:
    """One line per field, `errors` keyed by the form's block IDs (as inline errors are); the text escaped, since
    it quotes the file (its name, its bad rows)."""
    labels = _field_labels()
    return [truncate(f"*{labels.get(block, block)}*: {escape(text)}", limit) for block, text in errors.items()]


def _field_labels() -> dict[str, str]:
    """Each input's label in the grant modal, by block ID: the form itself is the one place they are written."""
    form = grant_modal(MTurkEnvironment.SANDBOX, {})
    return {b["block_id"]: b["label"]["text"] for b in form["blocks"] if b.get("type") == "input"}


def _view(env: MTurkEnvironment | str, *texts: str) -> dict[str, Any]:
    """A modal that only says something, under the environment line the form showed; Close, no submit."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": TITLE},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [_section(text) for text in (environment_line(env), *texts)],
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}}
