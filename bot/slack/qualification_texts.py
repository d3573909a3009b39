"""What the type picker and the MTurk look-ups show: pure builders, no network calls.

Names come from MTurk and worker IDs from people: names are escaped (mrkdwn) and cut by blocks.truncate,
or sent as plain_text in the picker's options, within Slack's limits (at most 100 options; an option's text
at most 75 characters, its value at most 150).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.mturk import QualificationTypeInfo
from bot.qualification_lookups import HoldersReport, ScoreAnswer
from bot.slack import blocks

MAX_OPTIONS = 100
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
NAME_LIMIT = 200


def type_options(types: Sequence[QualificationTypeInfo]) -> list[dict[str, Any]]:
    """The picker's options: "Name (ID)", the name cut so the whole ID always shows; the value is the ID."""
    return [_option(t) for t in types[:MAX_OPTIONS] if len(t.qualification_type_id) <= OPTION_VALUE_LIMIT]


def _option(t: QualificationTypeInfo) -> dict[str, Any]:
    suffix = f" ({t.qualification_type_id})"
    name = " ".join(t.name.split()) or "(no name)"
    text = blocks.truncate(name, OPTION_TEXT_LIMIT - len(suffix)) + suffix
    return {"text": {"type": "plain_text", "text": text}, "value": t.qualification_type_id}


def type_text(qualification: QualificationTypeInfo) -> str:
    """“Passed screener” (`3X0…`): the name escaped and cut, then the ID."""
    name = blocks.truncate(blocks.escape(qualification.name), NAME_LIMIT)
    return f"“{name}” (`{qualification.qualification_type_id}`)"


def score_text(answer: ScoreAnswer) -> str:
    tag = blocks.environment_tag(answer.environment)
    env = answer.environment.label
    worker = f"`{answer.worker_id}`"
    qualification = type_text(answer.qualification)
    if not answer.worker_known:
        return f"{tag} MTurk does not know the worker ID {worker} in the {env}; is it from the other environment?"
    if answer.score is None:
        return f"{tag} {worker} does not hold {qualification} in the {env}."
    score = answer.score
    when = f" {blocks.slack_date(score.granted_at)}" if score.granted_at else ""  # "on <date> at <time>"
    if score.status == "Granted":
        return f"{tag} {worker} holds {qualification} with score {score.integer_value}, granted{when}, in the {env}."
    status = blocks.escape(score.status or "unknown")
    return (
        f"{tag} {worker} has {qualification} with score {score.integer_value} but its status is {status} "
        f"(granted{when}), in the {env}."
    )


def holders_text(report: HoldersReport, *, sent: bool) -> str:
    """The ephemeral answer to `holders`; `sent`: the CSV is in the user's DM."""
    tag = blocks.environment_tag(report.environment)
    env = report.environment.label
    qualification = type_text(report.qualification)
    revoked = report.counts.get("Revoked", 0)
    also = f" ({revoked:,} more had it revoked)" if revoked else ""
    if not report.total:
        return f"{tag} No worker holds {qualification} in the {env}."
    where = "the list is in your DM" if sent else "the list could not be sent to your DM; try again"
    return f"{tag} {report.holding:,} worker(s) hold {qualification} in the {env}{also}; {where}."


def holders_file_comment(report: HoldersReport) -> str:
    tag = blocks.environment_tag(report.environment)
    return (
        f"{tag} Every worker with {type_text(report.qualification)} in the {report.environment.label}: "
        "worker, score, status and grant time (UTC), as MTurk listed them."
    )


def holders_filename(report: HoldersReport) -> str:
    env = report.environment.value
    return f"grant-qual-holders-{report.qualification.qualification_type_id}-{env}.csv"


def lookup_usage() -> str:
    return (
        "*Look-ups* (a type by its name in quotes, or by its ID):\n"
        '• `/grant-qual score "Passed screener" A1B2C3D4E5F6G7`: a worker\'s current score for a type, from MTurk.\n'
        '• `/grant-qual holders "Passed screener"`: how many workers hold a type; the full list comes by DM.'
    )
