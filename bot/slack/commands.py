"""/grant-qual: open the modal, post a request typed on one line, or cancel one; look-ups and help go to
lookups.py, score and holders to qualification_lookups.py."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.requests import CancelWanted, InvalidRequest, ModalWanted, is_mturk_lookup, parse_command_text
from bot.service import CannotSubmit, NotAllowed
from bot.slack import blocks, lookups
from bot.slack.after_ack import Requester, run_after_ack
from bot.slack.cancel import cancel_by_command
from bot.slack.preview_progress import preview_request
from bot.slack.qualification_lookups import answer_mturk_lookup
from bot.slack.submission import announce_request

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


def register(app: App, context: SlackContext) -> None:
    service, max_workers = context.service, context.max_workers
    env = service.gateway.environment

    @app.command("/grant-qual")
    def grant_qual(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        requester = Requester(
            str(command.get("user_id", "")), lambda text: respond(text=text, response_type="ephemeral")
        )
        text = str(command.get("text") or "")
        if lookups.answers(text):  # for approvers too, who may not request
            run_after_ack(context, requester, lambda: lookups.answer(context, requester.user_id, text, respond))
        elif is_mturk_lookup(text):  # score and holders: for approvers too, and answered from MTurk
            run_after_ack(context, requester, lambda: answer_mturk_lookup(context, text, requester, client))
        elif text.strip():
            # Checking with MTurk and posting take a while: free this listener thread for the next ack.
            run_after_ack(context, requester, lambda: handle(command, requester, client))
        else:
            handle(command, requester, client)  # views.open must use the trigger within 3 seconds

    def handle(command: dict[str, Any], requester: Requester, client: WebClient) -> None:
        user_id, reply = requester.user_id, requester.reply
        try:
            service.ensure_may_request(user_id)
            parsed = parse_command_text(str(command.get("text") or ""), max_workers=max_workers)
            if isinstance(parsed, ModalWanted):
                metadata = {"response_url": str(command.get("response_url", ""))}
                client.views_open(trigger_id=command["trigger_id"], view=blocks.grant_modal(env, metadata))
            elif isinstance(parsed, CancelWanted):
                cancel_by_command(context, requester, parsed)
            else:
                requester.request = service.submit(user_id, parsed)
                requester.request = preview_request(context, requester.request)
                announce_request(context, requester.request, reply)
        except NotAllowed as refusal:
            reply(f":no_entry: {refusal} Nothing was posted.")
        except InvalidRequest as invalid:
            # The messages quote what was typed; escaped, it cannot ping or link.
            problems = "\n".join(f"• {blocks.escape(message)}" for message in invalid.errors.values())
            reply(f":x: Nothing was posted:\n{problems}\n\n{blocks.usage_text(env, max_workers)}")
        except CannotSubmit as error:
            reply(f":warning: Nothing was posted. {blocks.escape(str(error))} Try again in a minute.")
