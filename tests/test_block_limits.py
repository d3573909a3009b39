"""Every Block Kit builder stays within Slack's published limits at any input size, and what matters
(the counts, the outcome) survives: 10,000 workers, 10,000 distinct scores, 500 distinct long failure
messages, 3,000-character reasons and names full of & < >. End to end, a request whose worker file gives
a few hundred distinct scores is posted, approved and summarised with its counts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import MTurkEnvironment
from bot.outcome_digest import OutcomeDigest, Scores
from bot.preview import ChangeKind, Held, HeldStatus
from bot.requests import GrantRequest, RequestState, WorkerOutcome, WorkerStatus
from bot.slack import blocks
from bot.slack.preview_blocks import change_text
from bot.store import PreviewSummary, RecordedChange
from tests.block_kit import (
    SECTION_FIELD_LIMIT,
    SECTION_TEXT_LIMIT,
    assert_valid_block_kit,
    text_objects,
    validate_blocks,
    validate_view,
)
from tests.conftest import APPROVER, QUAL, QUAL_NAME, REQUESTER, RunningApp
from tests.slack_sender import message_text, modal_values

# Slack truncates a message's top-level text past 40,000 characters and recommends keeping it under 4,000:
# it is the notification and the fallback, so the app keeps it under 4,000.
MESSAGE_TEXT_CAP = 4000
HEADER_LIMIT = 150
CONFIRM_TEXT_LIMIT = 300
BUTTON_TEXT_LIMIT = 75
MANY = 10_000
NASTY = "&<>" * 85  # 255 characters, each escaped to four or five
LONG_REASON = ("R&D <!channel> " * 200)[:3000]
LINK = "https://lab.slack.com/archives/C0APPROVALS/p1714564800000100"
# The app's own sequences in mrkdwn: mentions, dates and the link to a request.
OWN_SEQUENCES = re.compile(r"<@U[A-Z0-9]+>|<!date\^\d+\^[^<>|]*\|[^<>|]*>|<https://[^<>|]*\|[^<>|]*>")
BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def worker_id(i: int) -> str:
    return f"A{i:063d}"  # as long as a worker ID may be


def grant_request(worker_count: int, state: RequestState = RequestState.PENDING, **changes: Any) -> GrantRequest:
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    decided = state is not RequestState.PENDING
    fields: dict[str, Any] = {
        "id": 123_456_789,
        "requester_id": REQUESTER,
        "qualification_type_id": "3" + "Q" * 63,
        "qualification_name": NASTY,
        "send_notification": True,
        "reason": LONG_REASON,
        "mturk_env": "production",
        "state": state,
        "worker_count": worker_count,
        "created_at": created,
        "decided_by": APPROVER if decided else None,
        "decided_at": created + timedelta(minutes=5) if decided else None,
        "round": 999_999,
    }
    fields.update(changes)
    return GrantRequest(**fields)


def granted(n: int, value: int | None = 90) -> list[WorkerOutcome]:
    return [WorkerOutcome(worker_id(i), value, WorkerStatus.GRANTED) for i in range(n)]


def distinct_scores(n: int) -> list[WorkerOutcome]:
    return [WorkerOutcome(worker_id(i), i * 1000, WorkerStatus.GRANTED) for i in range(n)]


def with_long_failures(n: int, failures: int) -> list[WorkerOutcome]:
    """`failures` workers failed, each for its own long reason full of & < >, with a long hint."""
    outcomes = granted(n - failures)
    for i in range(n - failures, n):
        message = f"Failure {i}: " + "<&>" * 400
        outcomes.append(
            WorkerOutcome(worker_id(i), 90, WorkerStatus.FAILED, f"Code{i}", message, f"Hint {i} " + "&" * 500)
        )
    return outcomes


SCENARIOS = {
    "10000-workers": lambda: granted(MANY),
    "10000-distinct-scores": lambda: distinct_scores(MANY),
    "500-distinct-long-failures": lambda: with_long_failures(MANY, 500),
    "all-failed": lambda: with_long_failures(MANY, MANY),
}


def mrkdwn_texts(text: str, message_blocks: list[dict[str, Any]]) -> list[str]:
    return [text] + [o["text"] for _, o in text_objects(message_blocks) if o["type"] == "mrkdwn"]


def assert_within_limits(text: str, message_blocks: list[dict[str, Any]] | None = None) -> None:
    """Slack's limits, the app's cap on top-level text, and escaped text never cut inside an entity."""
    assert 0 < len(text) <= MESSAGE_TEXT_CAP, len(text)
    if message_blocks is not None:
        validate_blocks(message_blocks)  # slack_sdk's validators and the published limits
        for block in message_blocks:
            for field in block.get("fields") or []:
                assert len(field["text"]) <= SECTION_FIELD_LIMIT
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= HEADER_LIMIT
            for element in block.get("elements") or []:
                if element.get("type") == "button":
                    assert len(element["text"]["text"]) <= BUTTON_TEXT_LIMIT
                    confirm = element.get("confirm") or {"text": {"text": ""}}
                    assert len(confirm["text"]["text"]) <= CONFIRM_TEXT_LIMIT
    for shown in mrkdwn_texts(text, message_blocks or []):
        assert not BROKEN_ENTITY.search(shown), f"an entity cut in two: {shown!r}"
        leftover = OWN_SEQUENCES.sub("", shown)
        assert "<" not in leftover and ">" not in leftover, f"a live < or >: {shown!r}"


def section_texts(message_blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in message_blocks if b["type"] == "section" and "text" in b]


@pytest.mark.parametrize("limit", range(1, 60))
def test_cutting_escaped_text_never_splits_an_entity_or_an_own_sequence(limit: int) -> None:
    escaped = blocks.escape("R&D <pilot> " * 5)
    cut = blocks.truncate(escaped, limit)
    assert len(cut) <= limit and escaped.startswith(cut.removesuffix("…"))
    assert not BROKEN_ENTITY.search(cut), cut
    own = blocks.truncate(f"Approved by <@{APPROVER}> and <@{REQUESTER}> today", limit)
    assert len(own) <= limit and not OWN_SEQUENCES.sub("", own).count("<"), own


def test_value_list_is_summarised_when_long() -> None:
    assert blocks.value_text(Scores.of({80, 95})) == "per worker (80, 95)"
    assert blocks.value_text(Scores.of(range(420))) == "per worker: 420 distinct scores, 0–419; see the CSV"
    assert blocks.value_text(Scores.of({None})) == "1 (MTurk's default)"


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("decided", [False, True], ids=["pending", "decided"])
def test_request_message_within_limits_at_the_extremes(scenario: str, decided: bool) -> None:
    workers = SCENARIOS[scenario]()
    request = grant_request(len(workers), RequestState.GRANTING if decided else RequestState.PENDING)
    status = blocks.decided_status(request, " — granting: 3 granted · 0 failed · 9997 remaining") if decided else None
    text, message_blocks = blocks.request_message(request, OutcomeDigest.of(workers), status)
    assert_within_limits(text, message_blocks)
    shown = message_text({"text": text, "blocks": message_blocks})
    assert f"Workers ({MANY})" in shown
    listed = re.search(r"… and (\d+) more", shown)
    assert listed and int(listed.group(1)) + shown.count("`A0") == MANY
    if scenario == "10000-distinct-scores":
        assert "per worker: 10000 distinct scores, 0–9999000; see the CSV" in shown
    (reason,) = [o["text"] for _, o in text_objects(message_blocks) if o["text"].startswith("Reason: ")]
    assert f"Reason: {LONG_REASON}".startswith(reason.removesuffix("…"))
    assert (status is None) == any(b["type"] == "actions" for b in message_blocks)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_result_message_keeps_the_counts_and_the_outcome_first(scenario: str) -> None:
    outcomes = SCENARIOS[scenario]()
    failed = sum(o.status is WorkerStatus.FAILED for o in outcomes)
    request = grant_request(len(outcomes), RequestState.FAILED if failed else RequestState.DONE)
    text, message_blocks = blocks.result_message(request, OutcomeDigest.of(outcomes), 103.4)
    assert_within_limits(text, message_blocks)
    first = section_texts(message_blocks)[0]
    counts = f"all {MANY} worker(s)" if not failed else f"to {MANY - failed} of {MANY} worker(s); {failed} failed"
    assert counts in first and counts in text
    if scenario == "10000-distinct-scores":
        assert "10000 distinct scores" in first
    if failed:
        reasons = next(t for t in section_texts(message_blocks) if t.startswith("*Failed, by reason*"))
        shown = len(re.findall(r"^• ", reasons, re.MULTILINE))
        more = re.search(r"… and (\d+) more reasons", reasons)
        groups = 500 if scenario != "all-failed" else MANY
        assert shown >= 1 and more and shown + int(more.group(1)) == groups
        button = next(e for b in message_blocks if b["type"] == "actions" for e in b["elements"])
        assert button["text"]["text"] == f"Retry failed ({failed})"
    retired = blocks.retired_summary(message_blocks, "U0RETRIER", request.round + 1)
    assert_within_limits(text, retired)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_thread_replies_dms_and_progress_within_limits(scenario: str) -> None:
    outcomes = SCENARIOS[scenario]()
    failed = sum(o.status is WorkerStatus.FAILED for o in outcomes)
    rejected = grant_request(MANY, RequestState.REJECTED)
    done = grant_request(MANY, RequestState.FAILED)
    for line in (
        blocks.rejection_reply(rejected),
        blocks.rejection_dm(rejected, LINK),
        blocks.result_dm(done, MANY - failed, failed, 10**7, LINK),
        blocks.progress_text(done, MANY - failed, failed, 0, None),
        blocks.progress_text(done, 5, 1, MANY - 6, 97.0),
        blocks.decided_status(done, " — " + blocks.outcome_line(MANY - failed, done)),
    ):
        assert_within_limits(line)
    assert f"granted {MANY - failed}, failed {failed}" in blocks.result_dm(done, MANY - failed, failed, 1.0, None)


def test_usage_and_modal_within_limits() -> None:
    assert_within_limits(blocks.usage_text(MTurkEnvironment.PRODUCTION, MANY))
    metadata = {"response_url": "https://hooks.slack.com/commands/T0001/1/" + "x" * 200}
    view = blocks.grant_modal(MTurkEnvironment.SANDBOX, metadata)
    validate_view(view)
    assert json.loads(view["private_metadata"]) == metadata


def test_section_text_stays_within_its_limit_whatever_the_builder_is_given() -> None:
    status = "x" * 5000 + "&amp;" * 500  # an oversized status is cut, not refused by Slack
    text, message_blocks = blocks.request_message(grant_request(1), OutcomeDigest.of(granted(1)), status)
    assert_within_limits(text, message_blocks)
    assert all(len(t) <= SECTION_TEXT_LIMIT for t in section_texts(message_blocks))


# ---------------------------------------------------------------------------------------------- end to end


def requester_site_worker_file(scores: dict[str, int]) -> bytes:
    rows = [f'"Worker ID","UPDATE BlockStatus","BlockReason","CURRENT-{QUAL_NAME}","UPDATE-{QUAL_NAME}"']
    rows += [f'"{worker}","","","","{score}"' for worker, score in scores.items()]
    return ("\n".join(rows) + "\n").encode()


def uploaded(app: RunningApp, suffix: str) -> list[str]:
    return [
        bytes(u["bytes"]).decode()
        for u in app.slack.uploaded_files.values()
        if u.get("completed") and u["filename"].endswith(suffix)
    ]


def test_a_worker_file_with_hundreds_of_distinct_scores_is_posted_approved_and_summarised(app: RunningApp) -> None:
    scores = {f"A{i:013d}": 1000 + i for i in range(600)}
    file = app.slack.host_file("F0SCORES", "User_123_workers.csv", requester_site_worker_file(scores))
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).body == ""
    shown = message_text(app.approval_message(timeout=20))
    assert "Workers (600)" in shown and "per worker: 600 distinct scores, 1000–1599; see the CSV" in shown
    app.click(APPROVER, "approve_request")
    assert app.wait_final(timeout=60).state is RequestState.DONE
    assert {g.worker_id: g.integer_value for g in app.mturk.grants} == scores
    summary = app.summary()
    assert "all 600 worker(s)" in summary["text"] and "all 600 worker(s)" in section_texts(summary["blocks"])[0]
    app.slack.wait_for(lambda: [dm for dm in app.slack.dms_to(REQUESTER) if "granted 600, failed 0" in dm["text"]])
    assert_valid_block_kit(app.slack)


def test_a_summarised_value_list_comes_with_the_workers_file(app: RunningApp) -> None:
    scores = {f"A{i:013d}": 10 + i for i in range(12)}  # few workers, too many scores to list
    file = app.slack.host_file("F0TWELVE", "User_124_workers.csv", requester_site_worker_file(scores))
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).body == ""
    assert "12 distinct scores, 10–21; see the CSV" in message_text(app.approval_message())
    (listing,) = app.slack.wait_for(lambda: uploaded(app, "-preview.csv"))
    assert listing.splitlines()[1:] == [f"{w},no score,{s},new" for w, s in scores.items()]


def test_the_change_line_stays_within_limits_at_the_extremes() -> None:
    def change(i: int, kind: ChangeKind, held: Held) -> RecordedChange:
        return RecordedChange(worker_id(i), -(2**31), WorkerStatus.SKIPPED, held, kind, 2**31 - 1)

    held = Held(HeldStatus.GRANTED, 2**31 - 1)
    examples = {kind: [change(i, kind, held) for i in range(3)] for kind in ChangeKind}
    summary = PreviewSummary(dict.fromkeys(ChangeKind, MANY), examples, MANY, examples[ChangeKind.CHANGED])
    request = grant_request(MANY * len(ChangeKind))
    line = change_text(request, summary)
    text, message_blocks = blocks.request_message(request, OutcomeDigest.of(granted(MANY)), change=line)
    assert_within_limits(text, message_blocks)
    shown = message_text({"text": text, "blocks": message_blocks})
    assert f"*Change*: {MANY} new (no score yet)" in shown and "CURRENT- score differs" in shown
