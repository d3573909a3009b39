"""Shortcuts: "Grant an MTurk qualification" (global) opens the grant modal from anywhere; "Grant a
qualification to these workers" (on a message) opens it with the message's CSV or text file already read.

Both ack first and open the modal with the trigger, which Slack honours for 3 seconds: the file is fetched
with the short timeout of an upload (bot/slack/files.py). The file goes to the submission by its ID, which is
read again there, so one parsing path checks it against the type the requester picks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.service import NotAllowed
from bot.slack import blocks, shortcut_blocks
from bot.slack.files import FileDownloadError, fetch_uploaded_file
from bot.worker_files import WorkerFileError, parse_worker_file

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)

GLOBAL_SHORTCUT = "grant_qual_global"
MESSAGE_SHORTCUT = "grant_qual_message"
WORKER_FILE_TYPES = frozenset({"csv", "tsv", "text", "txt"})


def register(app: App, context: SlackContext) -> None:
    service = context.service
    env = service.gateway.environment

    @app.shortcut(GLOBAL_SHORTCUT)
    def grant_from_anywhere(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        try:
            service.ensure_may_request(_user_id(body))
            view = blocks.grant_modal(env, {})
        except NotAllowed as refusal:
            view = shortcut_blocks.notice_modal(f":no_entry: {refusal}")
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.shortcut(MESSAGE_SHORTCUT)
    def grant_to_these_workers(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=_modal_for_message(context, body))


def _modal_for_message(context: SlackContext, body: dict[str, Any]) -> dict[str, Any]:
    """The grant modal with the message's worker file read, or a modal saying why there is none."""
    try:
        context.service.ensure_may_request(_user_id(body))  # an outsider's file is not even downloaded
    except NotAllowed as refusal:
        return shortcut_blocks.notice_modal(f":no_entry: {refusal}")
    file = worker_file_of(body.get("message"))
    if file is None:
        return shortcut_blocks.notice_modal(shortcut_blocks.no_file_text())
    file_id, name = str(file.get("id") or ""), str(file.get("name") or file.get("title") or "")
    try:
        content = fetch_uploaded_file(context.messenger.client, file_id)
    except FileDownloadError as error:
        return shortcut_blocks.notice_modal(f":x: {blocks.escape(name or 'The file')} could not be read: {error}")
    try:
        # Before a type is picked: no default score and no UPDATE- column to match yet.
        parsed = parse_worker_file(
            content, default_value=None, qualification_name=None, max_workers=context.max_workers, filename=name
        )
        note = shortcut_blocks.workers_note(name, len(parsed.workers), parsed.description)
    except WorkerFileError as error:
        note = shortcut_blocks.problems_note(name, blocks.escape(error.summary()))
    metadata = {"response_url": str(body.get("response_url") or "")}
    env = context.service.gateway.environment
    return shortcut_blocks.modal_with_file(env, metadata, file_id, name, note)


def worker_file_of(message: Any) -> dict[str, Any] | None:
    """The message's first CSV or text file, as Slack lists it in the shortcut's payload."""
    files = message.get("files") if isinstance(message, dict) else None
    for file in files if isinstance(files, list) else []:
        if not isinstance(file, dict) or not file.get("id"):
            continue
        filetype = str(file.get("filetype") or "").lower()
        name = str(file.get("name") or "").lower()
        mimetype = str(file.get("mimetype") or "").lower()
        if filetype in WORKER_FILE_TYPES or name.endswith((".csv", ".tsv", ".txt")) or mimetype.startswith("text/"):
            return file
    return None


def _user_id(body: dict[str, Any]) -> str:
    user = body.get("user")
    return str(user.get("id", "")) if isinstance(user, dict) else ""
