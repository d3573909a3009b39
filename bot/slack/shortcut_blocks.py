"""Block Kit for the shortcuts: the grant modal with a message's worker file already read, and the modals that
say why the form cannot be opened. Pure functions; no network calls here."""

from __future__ import annotations

import json
from typing import Any

from bot.config import MTurkEnvironment
from bot.slack.blocks import escape, grant_modal, truncate

FILE_NOTE_BLOCK = "file_from_message"
# The private_metadata keys that carry the message's file to the submission, which reads it again.
FILE_ID_KEY, FILE_NAME_KEY = "file_id", "file_name"


def notice_modal(text: str) -> dict[str, Any]:
    """A modal that only says something: why the form cannot be opened for this user or with this message."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Grant qualification"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}],
    }


def modal_with_file(
    env: MTurkEnvironment, metadata: dict[str, str], file_id: str, name: str, note: str
) -> dict[str, Any]:
    """The grant modal carrying the message's file (read again at submission) and a note of what it holds."""
    modal = grant_modal(env, {**metadata, FILE_ID_KEY: file_id, FILE_NAME_KEY: name})
    section = {"type": "section", "block_id": FILE_NOTE_BLOCK, "text": {"type": "mrkdwn", "text": truncate(note, 3000)}}
    modal["blocks"].insert(1, section)
    return modal


def workers_note(name: str, count: int, description: str) -> str:
    return (
        f":page_facing_up: *Workers from {_name(name)}: {count:,}* ({description}). Leave the file field below "
        "empty to use them; the file is read again, for the type you pick, when you submit."
    )


def problems_note(name: str, summary: str) -> str:
    return (
        f":warning: *{_name(name)}*, read before a qualification type is picked: {summary}\n"
        "It is read again for the type you pick when you submit, and any problem is shown under the file field."
    )


def no_file_text() -> str:
    return (
        "This message has no CSV or text file attached. Use the shortcut *Grant to these workers* on a message "
        "with the worker file (a batch results CSV, the requester site's worker file, or one ID per line), or "
        "type `/grant-qual` to open the form."
    )


def file_metadata(private_metadata: str) -> dict[str, str] | None:
    """The file a modal opened from a message shortcut carries: {"id", "name"}, or None."""
    try:
        metadata = json.loads(private_metadata or "{}")
    except ValueError:
        return None
    if not isinstance(metadata, dict) or not isinstance(metadata.get(FILE_ID_KEY), str):
        return None
    return {"id": metadata[FILE_ID_KEY], "name": str(metadata.get(FILE_NAME_KEY) or "")}


def _name(name: str) -> str:
    return escape(truncate(name or "the file", 200))
