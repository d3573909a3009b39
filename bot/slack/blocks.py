"""Block Kit builders: pure functions from domain objects to Slack payloads. No network calls here.

Anything a person typed (reasons, IDs that failed validation, MTurk's error text, qualification names) is
escaped or sent as plain_text, so it cannot ping, link or format. Every builder stays within Block Kit's
published limits whatever it is given (10,000 workers, as many distinct scores or failure reasons): counts
and outcomes come first, long lists are summarised (the thread carries the full CSV), and long text is cut
by truncate() alone, after escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.config import MTurkEnvironment
from bot.outcome_digest import (
    FAILURE_GROUPS_KEPT,
    IDS_KEPT_PER_FAILURE,
    SCORES_KEPT,
    WORKERS_KEPT,
    FailureGroup,
    OutcomeDigest,
    Scores,
)
from bot.requests import CANCEL_USAGE, REVOKE_USAGE, USAGE, GrantRequest, Operation, WorkerStatus

APPROVE_ACTION = "approve_request"
RETRY_ACTION = "retry_failed"
REJECT_ACTION = "reject_request"
CANCEL_ACTION = "cancel_request"
REJECT_MODAL_CALLBACK = "reject_request_modal"
REJECT_REASON_BLOCK = "reject_reason"
REJECT_REASON_INPUT_LIMIT = 1000  # what an approver may type as a rejection's reason
REJECT_REASON_SHOWN_LIMIT = 1500  # the reason once escaped (longer), in a rejection's notification text
UNDO_ACTION = "undo_request"
MODAL_CALLBACK = "grant_request_modal"
# The modal's qualification type picker (an external_select fed by the app's options listener).
TYPE_PICKER_BLOCK = "qualification_type"
TYPE_PICKER_ACTION = "pick_qualification_type"
REGRANT_BLOCK = "regrant"
OPERATION_BLOCK = "operation"
WORKER_MESSAGE_BLOCK = "worker_message"
EXPIRES_BLOCK = "expires"
SECTION_TEXT_LIMIT = 3000  # also any text object's, so a context element's
SECTION_FIELD_LIMIT = 2000
HEADER_LIMIT = 150
TEXT_INPUT_LIMIT = 3000
CONFIRM_TEXT_LIMIT = 300
# A message's top-level text is its notification and the fallback where blocks cannot show. Slack truncates
# it past 40,000 characters and recommends staying under 4,000; everything it must say is in its first line.
MESSAGE_TEXT_LIMIT = 4000
# The messages show what a request's OutcomeDigest keeps (bot/outcome_digest.py).
SHOWN_WORKERS = WORKERS_KEPT
# Room for the first SHOWN_WORKERS IDs even at MTurk's longest (64 characters), with the heading and a count.
WORKER_LIST_BUDGET = 2800
SHOWN_VALUES = SCORES_KEPT
SHOWN_FAILURE_GROUPS = FAILURE_GROUPS_KEPT
NAME_LIMIT = 200  # a qualification name, escaped
FAILURE_MESSAGE_LIMIT = 300  # MTurk's words for one failure, escaped
HINT_LIMIT = 300
FAILED_IDS_SHOWN = IDS_KEPT_PER_FAILURE
FAILED_IDS_BUDGET = 400
ELLIPSIS = "…"
# What a cut can leave of an entity escape() writes: "&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt".
_PARTIAL_ENTITY = re.compile(r"&(?:a|am|amp|l|lt|g|gt)?$")
# The app's own mrkdwn sequences (a mention, a date, a link) are shorter than this; user text has no "<".
_LONGEST_OWN_SEQUENCE = 200

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only &, < and > are special, and escaping them defuses mentions and links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending in "…" when cut: the one place that cuts what Slack shows.

    Escape first, then cut: a cut never splits an entity escape() wrote (`&amp;` would show as `&am`) nor one
    of the app's own `<…>` sequences (a mention, a date, a link); it backs off to before them. Python's str
    is indexed by code point, so a cut never splits a character either.
    """
    if len(text) <= limit:
        return text
    kept = _PARTIAL_ENTITY.sub("", text[: max(limit - len(ELLIPSIS), 0)])
    opened = kept.rfind("<")
    if opened > kept.rfind(">") and len(kept) - opened <= _LONGEST_OWN_SEQUENCE:
        kept = kept[:opened]
    return kept + ELLIPSIS if limit >= len(ELLIPSIS) else ""


def environment_line(env: MTurkEnvironment | str) -> str:
    env = MTurkEnvironment(env)
    if env is MTurkEnvironment.PRODUCTION:
        return ":rotating_light: *MTurk PRODUCTION* — real workers, real qualifications"
    return ":test_tube: *MTurk SANDBOX* — test environment, no real workers affected"


def revoke_line(request: GrantRequest) -> str | None:
    """The approval message's REVOKE line, as loud as the PRODUCTION one, for a request that revokes anyone."""
    if not request.revoke_count:
        return None
    if request.kind_label == "REVOKE":
        return f":no_entry_sign: *REVOKE* — removes the qualification from {request.revoke_count} worker(s)"
    granted = request.worker_count - request.revoke_count
    return (
        f":no_entry_sign: *GRANT AND REVOKE* — revokes the qualification from {request.revoke_count} worker(s) "
        f"and grants it to {granted}"
    )


def worker_message_text(request: GrantRequest) -> str:
    """What the revoked workers are sent (MTurk's Reason), labelled as such: they read it, the reason is internal."""
    if not request.worker_message:
        return "None: MTurk does not notify the workers"
    return f"“{truncate(escape(request.worker_message), 1000)}”"


def environment_tag(env: MTurkEnvironment | str) -> str:
    return f"[{MTurkEnvironment(env).label}]"


def worker_list(
    worker_ids: Sequence[str], shown: int = SHOWN_WORKERS, budget: int = WORKER_LIST_BUDGET, *, total: int | None = None
) -> str:
    """The one place that formats a list of worker IDs: all of them, or the first ones (at most `shown`, in
    at most `budget` characters) and a count of the rest. Given `total`, `worker_ids` are the first (at least
    `shown`) of that many."""
    total = len(worker_ids) if total is None else total
    if total <= shown:
        everyone = ", ".join(f"`{w}`" for w in worker_ids)
        if len(everyone) <= budget:
            return everyone
    room = budget - len(f" … and {total} more")
    listed: list[str] = []
    used = 0
    for worker_id in worker_ids[:shown]:
        cost = len(worker_id) + 2 + (2 if listed else 0)
        if used + cost > room:
            break
        listed.append(f"`{worker_id}`")
        used += cost
    return f"{', '.join(listed)} … and {total - len(listed)} more".lstrip()


def value_text(scores: Scores) -> str:
    """The score a request gives: one, a short list, or how many distinct ones and their range (the thread's
    CSV lists each worker's)."""
    if scores.count > SHOWN_VALUES:
        return f"per worker: {scores.count} distinct scores, {scores.lowest}–{scores.highest}; see the CSV"
    if len(scores.values) <= 1:
        value = next(iter(scores.values), None)
        return f"{value}" if value is not None else "1 (MTurk's default)"
    return "per worker (" + ", ".join(str(v) for v in sorted({_num(v) for v in scores.values})) + ")"


def needs_worker_file(request: GrantRequest, outcomes: OutcomeDigest) -> bool:
    """Whether the approval message leaves workers or their scores out, so its thread must list them all."""
    return request.worker_count > SHOWN_WORKERS or outcomes.scores.count > SHOWN_VALUES


def _num(value: int | None) -> int:
    return 1 if value is None else value


def qualification_text(request: GrantRequest) -> str:
    name = f" {truncate(escape(request.qualification_name), NAME_LIMIT)}" if request.qualification_name else ""
    return f"`{request.qualification_type_id}`{name}"


def _mrkdwn(text: str, limit: int = SECTION_TEXT_LIMIT) -> Block:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def _field(text: str) -> Block:
    return _mrkdwn(text, SECTION_FIELD_LIMIT)


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def request_message(
    request: GrantRequest,
    outcomes: OutcomeDigest,
    status: str | None = None,
    change: str | None = None,
    approvers: Sequence[str] = (),
    undo_link: str = "",
) -> tuple[str, list[Block]]:
    """The approval message: everything an approver must see, with buttons while the request is pending (and,
    when it needs several approvers, whose approvals it has so far).

    `change`: the preview's change line (bot/slack/preview_blocks.py), for a request that has one. `undo_link`:
    " (<url|see it>)" to the request an undo request undoes.
    """
    kind = request.kind_label
    fields = [
        _field(f"*Requested by*\n<@{request.requester_id}>"),
        _field(f"*Qualification type*\n{qualification_text(request)}"),
    ]
    if kind != "REVOKE":
        fields.append(_field(f"*Value*\n{value_text(outcomes.grant_scores)}"))
        fields.append(_field(f"*Notify workers*\n{'Yes' if request.send_notification else 'No'}"))
    if kind:
        fields.append(_field(f"*Message to workers (sent by MTurk)*\n{worker_message_text(request)}"))
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(f"Qualification {_kind_noun(request)} request #{request.id}", HEADER_LIMIT),
            },
        },
        _section(environment_line(request.mturk_env)),
    ]
    if loud := revoke_line(request):
        blocks.append(_section(loud))
    if request.undo_of is not None:
        blocks.append(_section(f":leftwards_arrow_with_hook: *Undo of request #{request.undo_of}*{undo_link}"))
    blocks += [
        {"type": "section", "fields": fields},
        _section(f"*Workers ({request.worker_count})*\n{worker_list(outcomes.workers, total=outcomes.count())}"),
    ]
    if request.reason:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "plain_text", "text": truncate(f"Reason: {request.reason}", SECTION_TEXT_LIMIT)},
            }
        )
    if change:
        blocks.append(_section(change))
    if kind != "REVOKE":
        blocks.append(_context("Granting overwrites any score a worker already has for this qualification."))
    if kind:
        blocks.append(
            _context(
                "Revoking removes the qualification (MTurk keeps it as Revoked). The reason above is internal; "
                "only the message to workers is sent to them."
            )
        )
    if status:
        blocks.append(_section(status))
    else:
        if request.approvals_required > 1:
            blocks.append(_context(approvals_so_far(request, approvers)))
        blocks.append(_decision_buttons(request, len(approvers)))
    if kind == "REVOKE":
        what = f"REVOKE {request.qualification_type_id} from {request.worker_count} worker(s)"
    elif kind:
        what = f"GRANT AND REVOKE {request.qualification_type_id} for {request.worker_count} worker(s)"
    else:
        what = f"grant {request.qualification_type_id} to {request.worker_count} worker(s)"
    text = f"{environment_tag(request.mturk_env)} Request #{request.id}: {what}"
    return truncate(text, MESSAGE_TEXT_LIMIT), blocks


def request_what(request: GrantRequest) -> str:
    """ "to grant `3X0…` Name to 2 worker(s)", "to REVOKE … from 2 worker(s)" or "to GRANT AND REVOKE … for 3"."""
    qualification, count = qualification_text(request), request.worker_count
    if request.kind_label == "REVOKE":
        return f"to REVOKE {qualification} from {count} worker(s)"
    if request.kind_label:
        return f"to GRANT AND REVOKE {qualification} for {count} worker(s)"
    return f"to grant {qualification} to {count} worker(s)"


def _kind_noun(request: GrantRequest) -> str:
    return {"REVOKE": "REVOKE", "GRANT AND REVOKE": "GRANT AND REVOKE"}.get(request.kind_label, "grant")


def _approve_question(request: GrantRequest, env: str) -> Callable[[str], str]:
    """The Approve button's confirm text: REVOKE said as loudly as the environment."""
    revokes, grants = request.revoke_count, request.worker_count - request.revoke_count
    if request.kind_label == "REVOKE":
        return lambda q: f"*REVOKE* {q} from {revokes} worker(s) in *{env}*?"
    if request.kind_label:
        return lambda q: (
            f"*GRANT AND REVOKE*: grant {q} to {grants} worker(s) and *REVOKE* it from {revokes} in *{env}*?"
        )
    return lambda q: f"Grant {q} to {request.worker_count} worker(s) in *{env}*? Existing scores are overwritten."


def approvals_so_far(request: GrantRequest, approvers: Sequence[str]) -> str:
    """A pending request's approvals, when it needs several: who approved, and how many more it waits for."""
    required = request.approvals_required
    if not approvers:
        return f":busts_in_silhouette: Needs {required} approvers (the requester does not count)."
    more = required - len(approvers)
    waiting = "one more approver" if more == 1 else f"{more} more approvers"
    count = f"{len(approvers)} of {required}"
    return f":white_check_mark: Approved by {_mentions(approvers)} ({count}) — waiting for {waiting}"


def _mentions(user_ids: Sequence[str]) -> str:
    mentions = [f"<@{user_id}>" for user_id in user_ids]
    return ", ".join(mentions[:-1]) + " and " + mentions[-1] if len(mentions) > 1 else "".join(mentions)


def _approve_confirm(request: GrantRequest, approvals: int) -> Block:
    """Approve's confirm dialog: grant now, or (while more approvers are needed after this one) add an approval."""
    env = MTurkEnvironment(request.mturk_env).label
    after = request.approvals_required - approvals - 1
    if after > 0:
        more = "one more approver" if after == 1 else f"{after} more approvers"
        return _confirm(
            request,
            "Add your approval?",
            lambda qualification: (
                f"Add your approval to request #{request.id}: {_kind_noun(request)} {qualification} for "
                f"{request.worker_count} worker(s) in *{env}*? Nothing happens until {more} approve too."
            ),
            "Approve",
        )
    revoking = bool(request.kind_label)
    return _confirm(
        request,
        "REVOKE now?" if revoking else "Grant now?",
        _approve_question(request, env),
        "Approve and revoke" if revoking else "Approve and grant",
    )


def _decision_buttons(request: GrantRequest, approvals: int = 0) -> Block:
    return {
        "type": "actions",
        "block_id": f"decision-{request.id}",
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": str(request.id),
                "confirm": _approve_confirm(request, approvals),
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": str(request.id),
            },
            {  # shown to everyone; only the requester may use it (approvers have Reject)
                "type": "button",
                "action_id": CANCEL_ACTION,
                "text": {"type": "plain_text", "text": "Cancel request"},
                "value": str(request.id),
                "confirm": {
                    "title": {"type": "plain_text", "text": "Cancel this request?"},
                    "text": {
                        "type": "mrkdwn",
                        "text": f"Request #{request.id} will be withdrawn and nothing granted. Only its requester "
                        "can cancel it.",
                    },
                    "confirm": {"type": "plain_text", "text": "Cancel request"},
                    "deny": {"type": "plain_text", "text": "Keep it"},
                },
            },
        ],
    }


def _confirm(request: GrantRequest, title: str, question: Callable[[str], str], confirm: str) -> Block:
    """A confirm dialog; its question has at most 300 characters, and an escaped qualification name can be
    long, so the name is left out rather than the rest."""
    full = question(qualification_text(request))
    short = full if len(full) <= CONFIRM_TEXT_LIMIT else question(f"`{request.qualification_type_id}`")
    text = truncate(short, CONFIRM_TEXT_LIMIT)
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "mrkdwn", "text": text},
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def decided_status(request: GrantRequest, detail: str = "", approvers: Sequence[str] = ()) -> str:
    """The status line where the buttons were: who rejected, or everyone who approved (the last one decided)."""
    verb = {"rejected": ":no_entry: Rejected"}.get(request.state.value, ":white_check_mark: Approved")
    rejected = request.state.value == "rejected"
    by = _mentions(approvers) if len(approvers) > 1 and not rejected else f"<@{request.decided_by}>"
    return f"{verb} by {by} {slack_date(request.decided_at)}{detail}"


def slack_date(moment: datetime | None) -> str:
    """A date Slack shows in each reader's own time zone."""
    if moment is None:
        return ""
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^on {{date_short}} at {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def usage_text(env: MTurkEnvironment, max_workers: int) -> str:
    return (
        f"*Usage* ({environment_tag(env)}):\n`{escape(USAGE)}`\n"  # its <...> would be read as links
        "• `/grant-qual` alone opens a form.\n"
        '• Name the type by its ID or by its name in quotes: `/grant-qual "Passed screener" A1B2C3D4E5F6G7`.\n'
        "• Worker IDs may be separated by spaces, commas or newlines; duplicates are dropped.\n"
        "• `value=` is the score to give (a whole number); without it MTurk gives 1. "
        "Granting overwrites a worker's existing score.\n"
        "• `notify=no` grants without emailing the workers.\n"
        "• Before posting, the app reads each worker's current score: the approval message shows the change, and "
        "workers who already hold the score are not called; `regrant=yes` grants them again.\n"
        f"• Up to {max_workers} workers per request; Slack limits typed text to about 3,000 characters, "
        "so use the form's file upload for long lists.\n"
        f"• `{escape(CANCEL_USAGE)}` withdraws your own pending request (e.g. `/grant-qual cancel 12`).\n"
        f"*Revoking*: `{escape(REVOKE_USAGE)}`, e.g. "
        '`/grant-qual revoke "Passed screener" A1B2C3D4E5F6G7 reason=study over message=Thanks for taking part`. '
        "`reason=` is internal (approvers and the record); `message=` is sent to the workers by MTurk, who "
        "notifies them only when there is one. Workers who do not hold it are not called. A finished request's "
        "summary has *Undo* (approvers): it requests, for approval, that each worker it changed gets back what "
        "they held before.\n"
        "Example: `/grant-qual 3X0ABC1DEF2GHIJKLMNO A1B2C3D4E5F6G7 A2B3C4D5E6F7G8 value=90 reason=passed screener`\n"
        "*Look-ups* (answered only to you):\n"
        "• `/grant-qual status 12`: where request #12 stands, who asked and decided, its counts and a link.\n"
        "• `/grant-qual history A1B2C3D4E5F6G7`: every request that named this worker, newest first.\n"
        "• `/grant-qual mine` (or `list`): your recent requests; for approvers, those waiting for a decision.\n"
        '• `/grant-qual score "Passed screener" A1B2C3D4E5F6G7`: a worker\'s current score for a type, from MTurk.\n'
        '• `/grant-qual holders "Passed screener"`: how many workers hold a type; the full list comes by DM.\n'
        "• `/grant-qual export` (or `export since 2026-11-01`, `export since 30d`), for approvers: every request "
        "and each worker's outcome as a CSV, by DM.\n"
        "• `/grant-qual help`: this text."
    )


def grant_modal(env: MTurkEnvironment, private_metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": truncate(json.dumps(private_metadata), 3000),
        "title": {"type": "plain_text", "text": "Grant qualification"},
        "submit": {"type": "plain_text", "text": "Request approval"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(environment_line(env)),
            {
                "type": "input",
                "block_id": OPERATION_BLOCK,
                "label": {"type": "plain_text", "text": "Grant or revoke"},
                "element": {
                    "type": "radio_buttons",
                    "action_id": "value",
                    "options": [_GRANT_OPTION, _REVOKE_OPTION],
                    "initial_option": _GRANT_OPTION,
                },
            },
            {
                "type": "input",
                "block_id": TYPE_PICKER_BLOCK,
                "label": {"type": "plain_text", "text": "Qualification type"},
                "element": {
                    "type": "external_select",
                    "action_id": TYPE_PICKER_ACTION,
                    "min_query_length": 0,  # the list opens with every type, before anything is typed
                    "placeholder": {"type": "plain_text", "text": "Search your types by name or ID"},
                },
                "hint": {
                    "type": "plain_text",
                    "text": f"The types this requester account created in the {env.label}, as on the requester "
                    "site (Manage → Qualification Types).",
                },
            },
            _text_input(
                "workers",
                "Worker IDs",
                optional=True,
                multiline=True,
                placeholder="A1B2C3D4E5F6G7, A2B3C4D5E6F7G8",
                hint="Separate with newlines, commas or spaces; duplicates are dropped. Slack allows 3,000 "
                "characters here (about 200 IDs): for more, upload a file below.",
            ),
            {
                "type": "input",
                "block_id": "workers_file",
                "optional": True,
                "label": {"type": "plain_text", "text": "…or a file of workers"},
                "element": {"type": "file_input", "action_id": "value", "filetypes": ["csv", "txt"], "max_files": 1},
                "hint": {
                    "type": "plain_text",
                    "text": "A batch results CSV (its WorkerId column), the requester site's worker file (an "
                    "UPDATE-<qualification> column gives each worker its own score), or one ID per line.",
                },
            },
            _text_input(
                "value",
                "Score (integer value)",
                optional=True,
                placeholder="1",
                hint="A whole number. Leave blank and MTurk gives 1. An existing score is overwritten.",
            ),
            {
                "type": "input",
                "block_id": "notify",
                "optional": True,
                "label": {"type": "plain_text", "text": "Notification"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [_NOTIFY_OPTION],
                    "initial_options": [_NOTIFY_OPTION],
                },
            },
            {
                "type": "input",
                "block_id": REGRANT_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Workers who already hold the score"},
                "element": {"type": "checkboxes", "action_id": "value", "options": [_REGRANT_OPTION]},
                "hint": {
                    "type": "plain_text",
                    "text": "By default they are not called (no call, no second email); the approval message "
                    "shows how many.",
                },
            },
            _text_input(
                EXPIRES_BLOCK,
                "Expires after",
                optional=True,
                placeholder="30d, 12h, 8w or 2027-03-01; empty: never",
                hint="Grants only. A time counted from when the grant is carried out, or a date (00:00 UTC); then "
                "the app revokes what this request granted, with no new approval.",
            ),
            _text_input(
                "reason",
                "Reason",
                optional=True,
                multiline=True,
                placeholder="Why these workers get this qualification (shown to the approver)",
            ),
            _text_input(
                WORKER_MESSAGE_BLOCK,
                "Message to workers (optional, sent by MTurk)",
                optional=True,
                multiline=True,
                placeholder="Revoke only: MTurk shows and emails this to each revoked worker",
                hint="Revoke only. Sent to the workers by MTurk; left empty, MTurk does not notify them. The reason "
                "above is internal and never sent.",
            ),
        ],
    }


_GRANT_OPTION = {"text": {"type": "plain_text", "text": "Grant"}, "value": "grant"}
_REVOKE_OPTION = {"text": {"type": "plain_text", "text": "Revoke (remove the qualification)"}, "value": "revoke"}


_REGRANT_OPTION = {
    "text": {"type": "plain_text", "text": "Re-grant workers who already hold this score"},
    "value": "regrant",
}
_NOTIFY_OPTION = {
    "text": {"type": "plain_text", "text": "Email the workers that they received the qualification"},
    "value": "notify",
}


def _text_input(
    block_id: str,
    label: str,
    *,
    optional: bool = False,
    multiline: bool = False,
    placeholder: str = "",
    hint: str = "",
    max_length: int = TEXT_INPUT_LIMIT,
) -> Block:
    element: Block = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": multiline,
        "max_length": max_length,
    }
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder}
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def result_message(
    request: GrantRequest, outcomes: OutcomeDigest, elapsed: float | None, *, undo: bool = False
) -> tuple[str, list[Block]]:
    """The thread reply when a round ends: the counts, failures grouped by reason, Retry failed, and (`undo`) the
    Undo button of a request that changed anyone."""
    skipped = outcomes.count(status=WorkerStatus.SKIPPED)
    granted = outcomes.count(status=WorkerStatus.GRANTED)
    failed = outcomes.count(status=WorkerStatus.FAILED)
    tag = environment_tag(request.mturk_env)
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    round_label = f" (round {request.round})" if request.round > 1 else ""
    icon = ":warning:" if failed else ":white_check_mark:"
    summary = f"{icon} {tag} {_done_text(request, outcomes)}"
    if failed:
        summary += f"; {failed} failed{took}{round_label}."
    else:
        summary += f"{took}{round_label}."
        if outcomes.called(Operation.GRANT):
            summary += (
                " Workers were notified by email." if request.send_notification else " Workers were not notified."
            )
    if skipped:
        summary += f" {_skipped_text(outcomes)}"
    blocks = [_section(summary)]  # the counts and the outcome first, whatever follows
    if failed:
        blocks.append(_section(_failure_groups(outcomes)))
    if granted and outcomes.called() <= SHOWN_WORKERS:
        for operation, heading in ((Operation.GRANT, "Granted"), (Operation.REVOKE, "Revoked")):
            if done := outcomes.done_workers.get(operation):
                blocks.append(_section(f"*{heading}*\n{worker_list(done)}"))
    blocks.append(_context("Every worker's result, in MTurk's words, is in the CSV file in this thread."))
    buttons = []
    if failed:
        buttons.append(_retry_element(request, failed))
    if undo:
        buttons.append(_undo_element(request))
    if buttons:
        blocks.append({"type": "actions", "block_id": f"retry-{request.id}-{request.round}", "elements": buttons})
    return truncate(_plain(summary), MESSAGE_TEXT_LIMIT), blocks


def _done_text(request: GrantRequest, outcomes: OutcomeDigest) -> str:
    """ "Granted `3X0…` Name (value 90) to all 2 worker(s)", "Revoked `3X0…` Name from 1 of 2 worker(s)", or both;
    of the workers called (not the skipped)."""
    parts = []
    grants, revokes = outcomes.called(Operation.GRANT), outcomes.called(Operation.REVOKE)
    if grants or not revokes:
        what = f"{qualification_text(request)} (value {value_text(outcomes.called_grant_scores)})"
        parts.append(f"Granted {what} to {_of(outcomes, Operation.GRANT)} worker(s)")
    if revokes:
        what = qualification_text(request) if not parts else "it"
        parts.append(f"{'revoked' if parts else 'Revoked'} {what} from {_of(outcomes, Operation.REVOKE)} worker(s)")
    return "; ".join(parts)


def _of(outcomes: OutcomeDigest, operation: Operation) -> str:
    done, called = outcomes.count(operation, WorkerStatus.GRANTED), outcomes.called(operation)
    return f"all {done}" if done == called else f"{done} of {called}"


def _failure_groups(outcomes: OutcomeDigest) -> str:
    """The largest groups of failures, as many as fit in one section; the others are counted."""
    groups = outcomes.failures
    lines = ["*Failed, by reason*"]
    room = SECTION_TEXT_LIMIT - len(lines[0]) - len(_more_reasons(outcomes.failure_reasons)) - 1
    for group in groups[:SHOWN_FAILURE_GROUPS]:
        line = _failure_line(group)
        room -= len(line) + 1
        if room < 0:
            break
        lines.append(line)
    if rest := outcomes.failure_reasons - (len(lines) - 1):
        lines.append(_more_reasons(rest))
    return "\n".join(lines)


def _failure_line(group: FailureGroup) -> str:
    hint = f" — _{truncate(escape(group.hint), HINT_LIMIT)}_" if group.hint else ""
    message = truncate(escape(group.message), FAILURE_MESSAGE_LIMIT)
    ids = worker_list(group.worker_ids, shown=FAILED_IDS_SHOWN, budget=FAILED_IDS_BUDGET, total=group.count)
    return f"• {group.count} × {message}{hint}\n      {ids}"


def _more_reasons(count: int) -> str:
    return f"… and {count} more reason{'s' if count > 1 else ''} (see the CSV file)."


def _retry_element(request: GrantRequest, failed: int) -> Block:
    env = MTurkEnvironment(request.mturk_env).label
    verb = "Carry out" if request.revoke_count else "Grant"
    return {
        "type": "button",
        "action_id": RETRY_ACTION,
        "text": {"type": "plain_text", "text": f"Retry failed ({failed})"},
        "value": f"{request.id}:{request.round}",
        "confirm": _confirm(
            request,
            "Retry the failed workers?",
            lambda qualification: (
                f"{verb} {qualification} again for the {failed} worker(s) that failed, "
                f"in *{env}*. Workers already done are not called again."
                if request.revoke_count
                else f"Grant {qualification} again to the {failed} worker(s) that failed, "
                f"in *{env}*. Workers already granted are not called again."
            ),
            "Retry failed",
        ),
    }


def _undo_element(request: GrantRequest) -> Block:
    env = MTurkEnvironment(request.mturk_env).label
    return {
        "type": "button",
        "action_id": UNDO_ACTION,
        "text": {"type": "plain_text", "text": "Undo"},
        "value": str(request.id),
        "confirm": _confirm(
            request,
            "Undo this request?",
            lambda qualification: (
                f"Request a rollback of {qualification} in *{env}*: each worker this request changed gets back "
                "the score they had before (or loses it if they had none). The undo is posted for approval."
            ),
            "Request undo",
        ),
    }


def retired_summary(blocks: Sequence[Block], retried_by: str, next_round: int) -> list[Block]:
    """A round's summary once its failures were retried: the button gives way to who retried."""
    kept = [b for b in blocks if b.get("type") != "actions"]
    return [*kept, _context(f":repeat: Retried by <@{retried_by}>: round {next_round} follows below.")]


def undone_summary(blocks: Sequence[Block], undone_by: str, undo_id: int | None) -> list[Block]:
    """A summary once its request was undone: the Undo button gives way to the undo request's number."""
    kept: list[Block] = []
    for block in blocks:
        if block.get("type") == "actions":
            elements = [e for e in block.get("elements") or [] if e.get("action_id") != UNDO_ACTION]
            if not elements:
                continue
            block = {**block, "elements": elements}
        kept.append(block)
    return [*kept, _context(f":leftwards_arrow_with_hook: Undo requested by <@{undone_by}> as request #{undo_id}.")]


def undo_requested_reply(request: GrantRequest, undone_by: str) -> str:
    """The original's thread, once an undo of it was requested (it is posted for approval like any request)."""
    return (
        f"{environment_tag(request.mturk_env)} :leftwards_arrow_with_hook: Undo requested as #{request.undone_by} "
        f"by <@{undone_by}>: it restores each worker this request changed, once an approver approves it."
    )


def _skipped_text(outcomes: OutcomeDigest) -> str:
    """ "12 already held 80 and were not called." (the preview found their score already there)."""
    not_held = outcomes.count(Operation.REVOKE, WorkerStatus.SKIPPED)
    skipped = outcomes.count(Operation.GRANT, WorkerStatus.SKIPPED)
    text = f"{not_held} did not hold it and were not called." if not_held else ""
    if not skipped:
        return text
    held_scores = outcomes.skipped_grant_scores
    held = f"held {held_scores.lowest}" if held_scores.count == 1 else "held their score"
    return f"{skipped} already {held} and were not called. {text}".strip()


def progress_text(request: GrantRequest, granted: int, failed: int, remaining: int, rate: float | None) -> str:
    tag = environment_tag(request.mturk_env)
    round_label = f" (round {request.round})" if request.round > 1 else ""
    speed = f" · {rate:.0f}/s" if rate else ""
    if remaining == 0:
        return f"{tag} :checkered_flag: Finished{round_label}: {granted} granted · {failed} failed."
    return (
        f"{tag} :hourglass_flowing_sand: Granting{round_label}: {granted} granted · {failed} failed · "
        f"{remaining} remaining{speed}"
    )


def _plain(summary: str) -> str:
    """Notification text without emoji codes or formatting marks."""
    return summary.split(" ", 1)[1].replace("`", "").replace("*", "")


def outcome_line(granted: int, request: GrantRequest) -> str:
    if request.kind_label == "REVOKE":
        return f"revoked from {granted} of {request.worker_count} worker(s)"
    if request.kind_label:
        return f"granted or revoked {granted} of {request.worker_count} worker(s)"
    return f"granted {granted} of {request.worker_count} worker(s)"


def rejection_reply(request: GrantRequest, *, with_reason: bool = True) -> str:
    reason = _rejection_reason(request) if with_reason else ""
    return (
        f"{environment_tag(request.mturk_env)} :no_entry: Rejected by <@{request.decided_by}>. Nothing was granted."
        f"{reason}"
    )


def rejection_dm(request: GrantRequest, link: str | None, *, with_reason: bool = True) -> str:
    reason = _rejection_reason(request) if with_reason else ""
    return (
        f"{environment_tag(request.mturk_env)} Your request #{request.id} to grant {qualification_text(request)} "
        f"to {request.worker_count} worker(s) was rejected by <@{request.decided_by}>. Nothing was granted."
        f"{reason}{_see(link)}"
    )


def _rejection_reason(request: GrantRequest) -> str:
    """The reason on one line, escaped, for a message's text (its notification)."""
    if not request.decision_reason:
        return ""
    return f" Reason: {truncate(escape(' '.join(request.decision_reason.split())), REJECT_REASON_SHOWN_LIMIT)}"


def rejection_blocks(headline: str, request: GrantRequest) -> list[Block] | None:
    """A rejection's thread reply or DM when it has a reason: the headline, then the reason verbatim, as plain
    text (it cannot ping, link or format); None without a reason (the text says it all)."""
    if not request.decision_reason:
        return None
    reason = truncate(f"Reason: {request.decision_reason}", SECTION_TEXT_LIMIT)
    return [_section(headline), {"type": "section", "text": {"type": "plain_text", "text": reason}}]


def reject_modal(request: GrantRequest, private_metadata: str, *, reason_required: bool) -> dict[str, Any]:
    """Reject's form: the reason, shown in the request's thread and to its requester."""
    what = (
        f"{environment_tag(request.mturk_env)} Reject request #{request.id} {request_what(request)} by "
        f"<@{request.requester_id}>? Nothing will be done."
    )
    return {
        "type": "modal",
        "callback_id": REJECT_MODAL_CALLBACK,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Reject request"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Keep it"},
        "blocks": [
            _section(what),
            _text_input(
                REJECT_REASON_BLOCK,
                "Reason" if reason_required else "Reason (optional)",
                optional=not reason_required,
                multiline=True,
                max_length=REJECT_REASON_INPUT_LIMIT,
                placeholder="Why this request is rejected",
                hint="Shown in the request's thread and in the requester's DM.",
            ),
        ],
    }


def reject_answer_view(text: str) -> dict[str, Any]:
    """What Reject's form turns into when the rejection did not take effect: why, and nothing to submit."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Reject request"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [_section(text)],
    }


def result_dm(request: GrantRequest, granted: int, failed: int, elapsed: float | None, link: str | None) -> str:
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    return (
        f"{environment_tag(request.mturk_env)} Your request #{request.id} ({qualification_text(request)}) was "
        f"approved by <@{request.decided_by}>: {_done_verb(request)} {granted}, failed {failed}{took}.{_see(link)}"
    )


def _done_verb(request: GrantRequest) -> str:
    return {"REVOKE": "revoked", "GRANT AND REVOKE": "granted or revoked"}.get(request.kind_label, "granted")


def _see(link: str | None) -> str:
    return f" <{link}|See the request>" if link else ""


def environment_mismatch_note(request: GrantRequest) -> str:
    """The thread's note when an app running in the other MTurk environment left the request as it is."""
    made_in = MTurkEnvironment(request.mturk_env)
    runs_in = next(env for env in MTurkEnvironment if env is not made_in)
    return (
        f"{environment_tag(made_in)} :warning: This request was made in the {made_in.label}; this app now runs in "
        f"{runs_in.label}, so it granted nothing and left the request as it is. An app running in the "
        f"{made_in.label} can still carry it out."
    )


def decision_buttons(request: GrantRequest) -> Block:
    """The pending request's buttons, as on its approval message: the App Home shows the very same ones."""
    return _decision_buttons(request)
