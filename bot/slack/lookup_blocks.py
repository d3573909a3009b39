"""Block Kit builders for the look-ups (status, history, mine): pure functions from the domain's answers to
ephemeral messages. No network calls here.

Each answer names every request's environment, shows dates in the reader's time zone (blocks.slack_date) and
links to each request's approval message when Slack gave a link (`links`, by request ID). A request takes
one section, so an answer of 20 and 10 requests stays far below Slack's 50 blocks; anything from people or
MTurk (qualification names, error messages) is escaped and cut by blocks.escape and blocks.truncate.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.lookups import MyRequests, RequestList, RequestStatus, WorkerHistory, WorkerHistoryEntry
from bot.requests import GrantRequest, Operation, RequestState, WorkerStatus
from bot.slack.blocks import (
    FAILURE_MESSAGE_LIMIT,
    MESSAGE_TEXT_LIMIT,
    SECTION_TEXT_LIMIT,
    Block,
    environment_tag,
    escape,
    qualification_text,
    slack_date,
    truncate,
)

Links = Mapping[int, str | None]
Answer = tuple[str, list[Block]]

STATE_LABELS = {
    RequestState.PREVIEWING: ":mag: being previewed: reading each worker's current score from MTurk",
    RequestState.PENDING: ":hourglass: waiting for a decision",
    RequestState.APPROVED: ":white_check_mark: approved, about to grant",
    RequestState.GRANTING: ":hourglass_flowing_sand: granting",
    RequestState.DONE: ":white_check_mark: done",
    RequestState.FAILED: ":warning: finished, some workers failed",
    RequestState.REJECTED: ":no_entry: rejected",
    RequestState.CANCELLED: ":no_entry_sign: cancelled by its requester",
    RequestState.EXPIRED: ":hourglass: expired: nobody decided in time",
}
# Who decided, when a person ended the request without a grant; anyone else who decided approved it.
_ENDED_BY = {RequestState.REJECTED: "Rejected", RequestState.CANCELLED: "Cancelled"}


def status_answer(status: RequestStatus, link: str | None) -> Answer:
    """`status 12`: the request's state, who asked and decided and when, its counts, a link to its message."""
    request = status.request
    tag = environment_tag(request.mturk_env)
    lines = [
        f"{tag} *Request #{request.id}* — {STATE_LABELS[request.state]}",
        f"*Qualification* {qualification_text(request)}",
        f"*Requested by* <@{request.requester_id}> {slack_date(request.created_at)}",
    ]
    if request.decided_by:
        verb = _ENDED_BY.get(request.state, "Approved")
        lines.append(f"*{verb} by* <@{request.decided_by}> {slack_date(request.decided_at)}")
    if request.finished_at and request.state not in _ENDED_BY:
        ended = "Expired" if request.state is RequestState.EXPIRED else "Finished"
        lines.append(f"*{ended}* {slack_date(request.finished_at)}")
    round_label = f" (round {request.round})" if request.round > 1 else ""
    lines.append(f"*Workers ({request.worker_count})* {_counts(status)}{round_label}")
    lines.append(_where(request, link))
    text = f"{tag} Request #{request.id}: {request.state.value}, {_counts(status)}"
    return _answer(text, [_section("\n".join(lines))])


def no_such_request(request_id: int) -> str:
    return f"Request #{request_id} does not exist."


def history_answer(history: WorkerHistory, links: Links) -> Answer:
    """`history A1…`: every request that named the worker, newest first, with what it did for them."""
    worker = f"`{history.worker_id}`"
    if not history.entries:
        return _answer(f"No request has named {history.worker_id}.", [_section(f"No request has named {worker}.")])
    heading = f"*Requests that named {worker}* ({history.total}, newest first)"
    sections = [_section(heading)] + [_section(_history_line(e, links.get(e.request.id))) for e in history.entries]
    if history.older:
        sections.append(_context(f"… and {history.older} older."))
    return _answer(f"{history.total} request(s) named {history.worker_id}.", sections)


def mine_answer(mine: MyRequests, links: Links) -> Answer:
    """`mine`: the user's recent requests; for an approver, also those waiting for a decision."""
    sections = [_section("*Your requests* (newest first)")]
    sections += _request_lines(mine.recent, links, "You have not requested anything yet.", older=True)
    text = f"Your requests: {mine.recent.total}."
    if mine.waiting is not None:
        sections.append(_section("*Waiting for a decision* (oldest first)"))
        sections += _request_lines(mine.waiting, links, "No request is waiting for a decision.", older=False)
        text += f" Waiting for a decision: {mine.waiting.total}."
    return _answer(text, sections)


def _request_lines(requests: RequestList, links: Links, none: str, *, older: bool) -> list[Block]:
    if not requests.statuses:
        return [_context(none)]
    lines = [_section(_request_line(s, links.get(s.request.id))) for s in requests.statuses]
    if requests.left_out:
        lines.append(_context(f"… and {requests.left_out} {'older' if older else 'more'}."))
    return lines


def request_line(status: RequestStatus, link: str | None) -> str:
    """One request: its number (linked), type, requester and date; its state and counts."""
    return _request_line(status, link)


def _request_line(status: RequestStatus, link: str | None) -> str:
    request = status.request
    return (
        f"{_request_ref(request, link)} {qualification_text(request)} · requested by <@{request.requester_id}> "
        f"{slack_date(request.created_at)}\n{STATE_LABELS[request.state]} · {request.worker_count} worker(s): "
        f"{_counts(status)}"
    )


def _history_line(entry: WorkerHistoryEntry, link: str | None) -> str:
    request, outcome = entry.request, entry.outcome
    value = outcome.integer_value if outcome.integer_value is not None else 1
    return (
        f"{_request_ref(request, link)} {qualification_text(request)} (value {value}) · requested by "
        f"<@{request.requester_id}> {slack_date(request.created_at)}\n{_outcome(entry)}"
    )


def _outcome(entry: WorkerHistoryEntry) -> str:
    """What the request did for this worker, in words that fit the request's state."""
    request, outcome = entry.request, entry.outcome
    revoke = outcome.operation is Operation.REVOKE
    if outcome.status is WorkerStatus.GRANTED:
        return ":white_check_mark: revoked" if revoke else ":white_check_mark: granted"
    if outcome.status is WorkerStatus.SKIPPED:
        return ":heavy_minus_sign: not called: " + ("did not hold it" if revoke else "already held the score")
    if outcome.status is WorkerStatus.FAILED:
        reason = escape(outcome.error_message or outcome.error_code or "no reason given")
        return f":x: failed: {truncate(reason, FAILURE_MESSAGE_LIMIT)}"
    if request.state is RequestState.REJECTED:
        return f":no_entry: not granted: rejected by <@{request.decided_by}>"
    if request.state is RequestState.PENDING:
        return ":hourglass: not granted yet: waiting for a decision"
    if request.state is RequestState.CANCELLED:
        return ":no_entry_sign: not granted: cancelled by its requester"
    if request.state is RequestState.EXPIRED:
        return ":hourglass: not granted: expired, nobody decided in time"
    return ":hourglass_flowing_sand: being granted"


def _request_ref(request: GrantRequest, link: str | None) -> str:
    number = f"<{link}|#{request.id}>" if link else f"#{request.id}"
    return f"{environment_tag(request.mturk_env)} {number}"


def _where(request: GrantRequest, link: str | None) -> str:
    if link:
        return f"<{link}|Open the request's message>"
    if request.message_ts:
        return "Its message in the approvals channel could not be linked just now."
    return "Its message is not posted in the approvals channel yet."


def _counts(status: RequestStatus) -> str:
    counts = f"{status.granted} granted · {status.failed} failed · {status.pending} pending"
    skipped = status.counts.get(WorkerStatus.SKIPPED, 0)
    return f"{counts} · {skipped} not called (already held the score)" if skipped else counts


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}]}


def _answer(text: str, sections: list[Block]) -> Answer:
    return truncate(text, MESSAGE_TEXT_LIMIT), sections
