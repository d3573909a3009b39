"""`/grant-qual export [since …]`: the record of requests as a CSV in the approver's DM.

The CSV is written row by row into a temporary file on disk (never whole in memory), then uploaded from that
file in blocks by the one upload helper (bot/slack/uploads.py). The answer comes ephemerally, after the upload.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from datetime import datetime

from slack_sdk import WebClient

from bot.export import ExportPlan, RequestExport, write_csv
from bot.requests import ExportLookup
from bot.slack.uploads import upload_file

log = logging.getLogger(__name__)


def send_export(
    export: RequestExport, client: WebClient, user_id: str, wanted: ExportLookup, say: Callable[[str], None]
) -> None:
    """Export the period `wanted` for `user_id` (NotAllowed unless an approver) and say how it went."""
    plan = export.plan(user_id, wanted)
    period = _period(plan)
    if plan.requests == 0:
        say(f"No requests were made {period}; there is nothing to export.")
        return
    try:
        with tempfile.TemporaryFile() as file:
            write_csv(export.rows(plan), file)
            dm_channel = str(client.conversations_open(users=user_id)["channel"]["id"])
            upload_file(
                client,
                channel=dm_channel,
                filename=_filename(plan),
                file=file,
                initial_comment=f"Every request made {period}, one row per worker (times in UTC).",
            )
    except Exception:
        log.exception("could not send the export of %s requests to %s", plan.requests, user_id)
        say(f":warning: The export of {plan.requests:,} requests {period} could not be sent to your DM. Try again.")
        return
    say(f"Exporting {plan.requests:,} requests {period} — the CSV is in your DM.")


def _period(plan: ExportPlan) -> str:
    return "so far" if plan.since is None else f"since {_utc(plan.since)}"


def _utc(moment: datetime) -> str:
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return f"{moment:%b} {moment.day}, {moment:%Y}"
    return f"{moment:%b} {moment.day}, {moment:%Y} {moment:%H:%M} UTC"


def _filename(plan: ExportPlan) -> str:
    start = "all" if plan.since is None else f"{plan.since:%Y-%m-%d}"
    return f"grant-qual-requests-{start}-to-{plan.until:%Y-%m-%d}.csv"
