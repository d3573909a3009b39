"""The type picker's options listener, and `/grant-qual score` and `holders`: answered from MTurk.

The picker's options are the ack itself (Slack waits for them); the command's answers come after its ack,
ephemeral, and the holders' CSV by DM.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.qualification_lookups import CannotLookUp, HoldersReport, QualificationLookups
from bot.requests import HoldersLookup, InvalidRequest, ScoreLookup, parse_mturk_lookup
from bot.service import NotAllowed
from bot.slack import blocks, qualification_texts
from bot.slack.after_ack import Requester
from bot.slack.uploads import upload_text

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


def lookups_for(context: SlackContext) -> QualificationLookups:
    return QualificationLookups(context.service.gateway, context.service.policy)


def register(app: App, context: SlackContext) -> None:
    lookups = lookups_for(context)

    @app.options(blocks.TYPE_PICKER_ACTION)
    def qualification_type_options(ack: Ack, body: dict[str, Any]) -> None:
        user = body.get("user")
        user_id = str(user.get("id", "")) if isinstance(user, dict) else ""
        typed = body.get("value")
        types = lookups.types_matching(user_id, typed if isinstance(typed, str) else "")
        ack(options=qualification_texts.type_options(types))


def answer_mturk_lookup(context: SlackContext, text: str, requester: Requester, client: WebClient) -> None:
    """Answer `score` or `holders` (already known to be one of them): refused, corrected, or looked up."""
    lookups = lookups_for(context)
    reply = requester.reply
    try:
        lookups.ensure_may_look_up(requester.user_id)
        lookup = parse_mturk_lookup(text)
        if isinstance(lookup, ScoreLookup):
            reply(qualification_texts.score_text(lookups.score(requester.user_id, lookup)))
        elif isinstance(lookup, HoldersLookup):
            report = lookups.holders(requester.user_id, lookup)
            sent = _send_holders_file(client, requester.user_id, report) if report.total else False
            reply(qualification_texts.holders_text(report, sent=sent))
    except NotAllowed as refusal:
        reply(f"{blocks.environment_tag(lookups.environment)} :no_entry: {refusal}")
    except InvalidRequest as invalid:
        problems = "\n".join(f"• {blocks.escape(message)}" for message in invalid.errors.values())
        reply(f"{blocks.environment_tag(lookups.environment)} :x: {problems}\n\n{qualification_texts.lookup_usage()}")
    except CannotLookUp as error:
        tag = blocks.environment_tag(lookups.environment)
        reply(f"{tag} :warning: {blocks.escape(str(error))} Try again in a minute.")


def _send_holders_file(client: WebClient, user_id: str, report: HoldersReport) -> bool:
    """The holders' CSV in the app's DM with the user; False (logged) when Slack refused it."""
    try:
        dm_channel = str(client.conversations_open(users=user_id)["channel"]["id"])
        filename = qualification_texts.holders_filename(report)
        upload_text(
            client,
            channel=dm_channel,
            filename=filename,
            content=report.csv,
            initial_comment=qualification_texts.holders_file_comment(report),
        )
    except Exception:
        log.exception("could not send the holders of %s to %s", report.qualification.qualification_type_id, user_id)
        return False
    return True
