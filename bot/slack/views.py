"""The grant modal's submission: validate inline (response_action: errors), then post the request.

Reading a big worker file and storing its workers can outlast Slack's 3 seconds, so that work runs under a
deadline (bot/slack/deadline.py); past it, the modal says the file is being read and gets the outcome later
(bot/slack/late_submission.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk.webhook import WebhookClient

from bot.requests import (
    Field,
    GrantRequest,
    InvalidRequest,
    WorkerTarget,
    build_grant_spec,
    parse_integer_value,
    parse_qualification_type_id,
    split_worker_ids,
    with_expiry,
    with_revokes,
)
from bot.service import CannotSubmit, NotAllowed
from bot.slack import blocks, submission_blocks
from bot.slack.after_ack import Requester, run_after_ack
from bot.slack.files import FileDownloadError, fetch_uploaded_file, max_file_bytes
from bot.slack.late_submission import Outcome, answer_late
from bot.slack.preview_progress import preview_request
from bot.slack.shortcut_blocks import file_metadata
from bot.slack.submission import announce_request
from bot.worker_files import WorkerFileError, parse_worker_file

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)

# Which modal input shows an error about each part of a request.
FIELD_BLOCKS = {
    Field.QUALIFICATION_TYPE: "qualification_type",
    Field.WORKERS: "workers",
    Field.WORKERS_FILE: "workers_file",
    Field.VALUE: "value",
    Field.NOTIFY: "notify",
    Field.REASON: "reason",
    Field.WORKER_MESSAGE: blocks.WORKER_MESSAGE_BLOCK,
    Field.EXPIRES: blocks.EXPIRES_BLOCK,
    Field.COMMAND: "qualification_type",
}


def register(app: App, context: SlackContext) -> None:
    @app.view(blocks.MODAL_CALLBACK)
    def grant_modal_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = str(body.get("user", {}).get("id", ""))
        requester = Requester(user_id, _reply_to(view, context, user_id))
        submitting = context.ack_deadline.start(lambda: _submit(context, user_id, view))
        if not context.ack_deadline.in_time(submitting):
            # A big file: answer within Slack's window, and say the outcome in the modal when it is known.
            ack(response_action="update", view=submission_blocks.reading_view(context.service.gateway.environment))
            go_on = partial(_preview_and_announce, context, requester)
            answer_late(context, requester, str(view.get("id") or ""), submitting, go_on)
            return
        outcome = submitting.result()
        if not isinstance(outcome, GrantRequest):
            ack(response_action="errors", errors=outcome)
            return
        ack()
        requester.request = outcome
        run_after_ack(context, requester, partial(_preview_and_announce, context, requester, outcome))


def _submit(context: SlackContext, user_id: str, view: dict[str, Any]) -> Outcome:
    """Read the form (and its file) and store the request; what is wrong comes back by the form's block IDs."""
    values = view.get("state", {}).get("values", {})
    try:
        file_workers, file_current = _workers_from_file(context, values, user_id, view)
        spec = build_grant_spec(
            qualification_type_id=_picked(values, blocks.TYPE_PICKER_BLOCK),
            worker_ids=split_worker_ids(_text(values, "workers")),
            integer_value=_text(values, "value"),
            send_notification=_checked(values, "notify"),
            reason=_text(values, "reason"),
            max_workers=context.max_workers,
            file_workers=file_workers,
        )
        spec = replace(spec, regrant=_checked(values, blocks.REGRANT_BLOCK), file_current=file_current)
        spec = with_revokes(
            spec,
            revoke_all=_chosen(values, blocks.OPERATION_BLOCK) == "revoke",
            worker_message=_text(values, blocks.WORKER_MESSAGE_BLOCK),
        )
        spec = with_expiry(spec, _text(values, blocks.EXPIRES_BLOCK), datetime.now(UTC))
        return context.service.submit(user_id, spec)
    except InvalidRequest as invalid:
        return _inline_errors(invalid)
    except (NotAllowed, CannotSubmit) as error:
        return {"qualification_type": str(error)}


def _preview_and_announce(context: SlackContext, requester: Requester, request: GrantRequest) -> None:
    requester.request = preview_request(context, request)
    announce_request(context, requester.request, requester.reply)


def _workers_from_file(
    context: SlackContext, values: dict[str, Any], user_id: str, view: dict[str, Any]
) -> tuple[tuple[WorkerTarget, ...], tuple[tuple[str, int], ...]]:
    """Workers from the uploaded file, if any, and its CURRENT- scores; its problems come back inline, by line.

    Without an upload, the file of the message the modal was opened on (message shortcut) is read again here.
    """
    files = (values.get("workers_file", {}).get("value", {}) or {}).get("files") or []
    if not files and (from_message := file_metadata(str(view.get("private_metadata") or ""))):
        files = [from_message]
    if not files or not isinstance(files[0], dict):
        return (), ()
    context.service.ensure_may_request(user_id)  # an outsider's file is not even downloaded
    qualification_type_id = parse_qualification_type_id(_picked(values, blocks.TYPE_PICKER_BLOCK))
    name = context.service.qualification_name(qualification_type_id)
    default_value = parse_integer_value(_text(values, "value"))
    try:
        # Only the file's ID is taken from the submission: where to download it from, Slack itself says.
        content = fetch_uploaded_file(
            context.messenger.client,
            str(files[0].get("id") or ""),
            max_bytes=max_file_bytes(context.max_workers),
        )
        parsed = parse_worker_file(
            content,
            default_value=default_value,
            qualification_name=name,
            max_workers=context.max_workers,
            filename=str(files[0].get("name") or ""),
        )
    except FileDownloadError as error:
        raise InvalidRequest({Field.WORKERS_FILE: str(error)}) from None
    except WorkerFileError as error:
        raise InvalidRequest({Field.WORKERS_FILE: error.summary()}) from None
    return parsed.workers, parsed.current_values


def _inline_errors(invalid: InvalidRequest) -> dict[str, str]:
    errors: dict[str, str] = {}
    for field, message in invalid.errors.items():
        block = FIELD_BLOCKS[field]
        errors[block] = f"{errors[block]} {message}" if block in errors else message
    return errors


def _text(values: dict[str, Any], block_id: str) -> str:
    return str((values.get(block_id, {}).get("value", {}) or {}).get("value") or "")


def _picked(values: dict[str, Any], block_id: str) -> str:
    """The type picker's chosen option's value: a type ID, checked again as one of the account's."""
    selected = (values.get(block_id, {}).get(blocks.TYPE_PICKER_ACTION, {}) or {}).get("selected_option") or {}
    return str(selected.get("value") or "") if isinstance(selected, dict) else ""


def _chosen(values: dict[str, Any], block_id: str) -> str:
    """A radio button's chosen option's value."""
    selected = (values.get(block_id, {}).get("value", {}) or {}).get("selected_option") or {}
    return str(selected.get("value") or "") if isinstance(selected, dict) else ""


def _checked(values: dict[str, Any], block_id: str) -> bool:
    return bool((values.get(block_id, {}).get("value", {}) or {}).get("selected_options"))


def _reply_to(view: dict[str, Any], context: SlackContext, user_id: str) -> Any:
    """Answer where /grant-qual was typed (its response_url), or by DM if that is gone."""
    try:
        response_url = json.loads(view.get("private_metadata") or "{}").get("response_url", "")
    except (ValueError, AttributeError):
        response_url = ""

    def reply(text: str) -> None:
        # private_metadata comes back only in requests signed by Slack, so the URL is the one we stored.
        if response_url.startswith(("https://", "http://")):
            response = WebhookClient(response_url).send(text=text, response_type="ephemeral")
            if response.status_code == 200:
                return
        context.messenger.client.chat_postMessage(channel=user_id, text=text)

    return reply
