"""Hostile and oversized input, end to end: nothing a person types can ping, link or format in what the app
sends, every message stays within Block Kit's limits, and everything sent is valid Block Kit."""

from __future__ import annotations

import json
import re

import pytest

from bot.requests import RequestState
from tests.block_kit import (
    MAX_MESSAGE_BLOCKS,
    SECTION_TEXT_LIMIT,
    assert_valid_block_kit,
    displayed_texts,
    text_objects,
    valid_block_kit,  # noqa: F401 (a fixture, used through pytestmark)
    validate_blocks,
)
from tests.conftest import APPROVER_2, CHANNEL, QUAL, REQUESTER, WORKERS, RunningApp, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text, modal_values

pytestmark = pytest.mark.usefixtures("valid_block_kit")

HOSTILE = "<!channel> <!here> <@U0APPROVE> <https://evil.example|click me> *bold* _it_ ~strike~ `code` &amp; <#C123>"
# Raw in mrkdwn, any of these would ping, link or mention. U0APPROVE is an approver: in these tests only
# APPROVER_2 decides, so the app itself never mentions U0APPROVE.
RAW_FRAGMENTS = ("<!channel>", "<!here>", "<@U0APPROVE>", "<https://evil", "<#C123>", "click me>")
HOSTILE_QUAL = "3HOSTILENAME00000001"
HOSTILE_NAME = "R&D <!channel> <https://evil.example|pilot> " + "&<>" * 50  # escapes to well over 300 characters
# The app's own sequences in mrkdwn: mentions of the people involved, dates, the channel, links to messages.
OWN_SEQUENCES = re.compile(
    rf"<@(?:{REQUESTER}|{APPROVER_2})>"
    r"|<!date\^\d+\^[^<>|]*\|[^<>|]*>"
    rf"|<#{CHANNEL}>"
    r"|<https://fake\.slack\.com/archives/[^<>|]*\|[^<>|]*>"
)


def responses(app: RunningApp, key: str) -> list[dict]:
    return app.slack.wait_for(lambda: app.slack.responses_for(key))


def assert_nothing_typed_is_live(app: RunningApp) -> None:
    """In every mrkdwn text the app sent, < and > only open and close the app's own sequences."""
    shown = displayed_texts(app.slack)
    assert shown
    for fmt, text, where in shown:
        if fmt != "mrkdwn":
            continue
        for fragment in RAW_FRAGMENTS:
            assert fragment not in text, f"{where}: raw {fragment!r} in mrkdwn: {text!r}"
        leftover = OWN_SEQUENCES.sub("", text)
        assert "<" not in leftover and ">" not in leftover, f"{where}: unescaped < or > in mrkdwn: {text!r}"


def decide(app: RunningApp, action: str, request_id: int) -> None:
    app.approval_message(request_id)
    if action == "reject_request":  # with a hostile reason, which the thread and the DM show
        assert app.reject(APPROVER_2, HOSTILE, request_id).status == 200
    else:
        assert app.click(APPROVER_2, action, request_id).status == 200
    app.wait_final(request_id)


def test_hostile_reason_and_names_cannot_ping_link_or_format(app: RunningApp) -> None:
    app.mturk.add_type(HOSTILE_QUAL, HOSTILE_NAME)
    app.mturk.unknown_workers.add(WORKERS[2])

    # 1: typed on one line, approved; one worker fails.
    app.request(f"{QUAL} {' '.join(WORKERS)} value=5 reason={HOSTILE}", response_key="line")
    assert "Request #1" in responses(app, "line")[0]["text"]
    decide(app, "approve_request", 1)
    assert app.grant_qual.store.get(1).state is RequestState.FAILED  # type: ignore[union-attr]
    assert len(app.mturk.grants) == 2

    # 2: through the modal, for the type with the hostile name, rejected.
    app.request("", response_key="modal")
    app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    metadata = json.dumps({"response_url": app.slack.response_url("modal")})
    values = modal_values(HOSTILE_QUAL, f"{WORKERS[0]}\n{WORKERS[1]}", "", notify=False, reason=HOSTILE)
    assert app.sender.submit_view(REQUESTER, values, private_metadata=metadata).status == 200
    assert "Request #2" in responses(app, "modal")[0]["text"]
    decide(app, "reject_request", 2)

    # 3: the hostile name granted, so it shows in the result, the thread and the DM too.
    app.request(f"{HOSTILE_QUAL} {WORKERS[0]} reason={HOSTILE}", response_key="named")
    responses(app, "named")
    decide(app, "approve_request", 3)
    app.slack.wait_for(lambda: len(app.slack.dms_to(REQUESTER)) == 3)

    # The approver reads the reason verbatim, as plain text, on every request.
    for request_id in (1, 2, 3):
        message = app.approval_message(request_id)
        plain = [o["text"] for _, o in text_objects(message["blocks"]) if o["type"] == "plain_text"]
        assert f"Reason: {HOSTILE}" in plain
    # The requester and the thread read the rejection's reason verbatim, as plain text.
    (rejected,) = app.posts("rejected", 2)
    rejection_dm = next(m for m in app.slack.dms_to(REQUESTER) if "was rejected" in m["text"])
    for message in (rejected, rejection_dm):
        plain = [o["text"] for _, o in text_objects(message["blocks"]) if o["type"] == "plain_text"]
        assert plain == [f"Reason: {HOSTILE}"]
    named = app.approval_message(3)
    assert "R&amp;D &lt;!channel&gt; &lt;https://evil.example|pilot&gt;" in message_text(named)
    assert_nothing_typed_is_live(app)


def test_hostile_text_in_rejected_input_is_echoed_escaped(app: RunningApp) -> None:
    app.request(
        "<!channel> <@U0APPROVE> A1GOOD0000001 value=<!here> notify=<#C123> <https://evil.example?a=b|click me>",
        response_key="bad",
    )
    (note,) = responses(app, "bad")
    assert "Nothing was posted" in note["text"]
    assert "&lt;!channel&gt;" in note["text"]  # named, so the requester sees what was wrong
    assert app.grant_qual.store.requests() == []
    assert_nothing_typed_is_live(app)


def test_reason_at_the_limit_is_posted_within_block_kit_limits(app: RunningApp) -> None:
    reason = ("<!channel> & " * 300)[:2999]
    values = modal_values(QUAL, WORKERS[0], "3", reason=reason)
    assert app.sender.submit_view(REQUESTER, values).status == 200
    message = app.approval_message(1)
    validate_blocks(message["blocks"])
    (shown,) = [o["text"] for _, o in text_objects(message["blocks"]) if o["text"].startswith("Reason: ")]
    assert len(shown) <= SECTION_TEXT_LIMIT
    assert f"Reason: {reason}".startswith(shown.rstrip("…"))
    # One character more than the limit is refused inline, and nothing is stored.
    too_long = app.sender.submit_view(REQUESTER, modal_values(QUAL, WORKERS[0], reason="x" * 3001)).json()
    assert too_long["response_action"] == "errors" and "3001 characters" in too_long["errors"]["reason"]
    assert len(app.grant_qual.store.requests()) == 1
    assert_nothing_typed_is_live(app)


def test_thousands_of_workers_through_the_modal_stay_within_limits(app: RunningApp) -> None:
    many = [f"A{i:013d}" for i in range(2000)]  # about 30,000 characters: more than Slack's input allows
    values = modal_values(QUAL, "\n".join(many), "1", reason=HOSTILE)
    reply = app.sender.submit_view(REQUESTER, values)
    assert reply.status == 200 and reply.body == ""
    message = app.approval_message(1)
    assert len(message["blocks"]) <= MAX_MESSAGE_BLOCKS
    validate_blocks(message["blocks"])
    text = message_text(message)
    assert "Workers (2000)" in text and "and 1960 more" in text
    assert app.grant_qual.store.get(1).worker_count == 2000  # type: ignore[union-attr]

    # Over the per-request maximum: refused inline with the count, not a wall of IDs.
    too_many = [f"A{i:013d}" for i in range(10_001)]
    answer = app.sender.submit_view(REQUESTER, modal_values(QUAL, " ".join(too_many))).json()
    assert answer["response_action"] == "errors" and "10001 workers" in answer["errors"]["workers"]
    # Thousands of bad IDs: the error names a few and counts the rest.
    bad = app.sender.submit_view(REQUESTER, modal_values(QUAL, " ".join(f"B{i}<@U0APPROVE>" for i in range(3000))))
    error = bad.json()["errors"]["workers"]
    assert "and 2990 more" in error and len(error) < 2000
    assert len(app.grant_qual.store.requests()) == 1
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
    assert_nothing_typed_is_live(app)


def test_many_failures_are_reported_within_limits(app: RunningApp) -> None:
    workers = [f"A2FAIL{i:08d}" for i in range(30)] + [f"A2GOOD{i:08d}" for i in range(30)]
    app.mturk.unknown_workers.update(workers[:30])
    values = modal_values(QUAL, " ".join(workers), "2", reason=HOSTILE)
    assert app.sender.submit_view(REQUESTER, values).status == 200
    decide(app, "approve_request", 1)
    summary = app.summary(1)
    validate_blocks(summary["blocks"])
    text = message_text(summary)
    assert "1 of 60" not in text and "30 of 60" in text and "30 failed" in text
    assert "Retry failed (30)" in text
    assert_nothing_typed_is_live(app)


def test_everything_sent_in_a_full_flow_is_valid_block_kit(app: RunningApp) -> None:
    app.mturk.unknown_workers.add(WORKERS[2])
    app.request("help", response_key="help")
    app.request(f"{QUAL} A1bad value=x", response_key="bad")
    app.request(f"{QUAL} {' '.join(WORKERS)} value=9 reason={HOSTILE}", response_key="line")
    responses(app, "line")
    app.request("", response_key="modal")
    (opened,) = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    assert opened.args["view"]["callback_id"] == "grant_request_modal"
    metadata = json.dumps({"response_url": app.slack.response_url("modal")})
    values = modal_values(QUAL, WORKERS[0], "", notify=True, reason="second")
    assert app.sender.submit_view(REQUESTER, values, private_metadata=metadata).status == 200
    decide(app, "approve_request", 1)
    decide(app, "reject_request", 2)
    app.slack.wait_for(lambda: len(app.slack.dms_to(REQUESTER)) == 2)
    # A decided request's message is updated with the outcome; late clicks get an ephemeral answer.
    app.click(APPROVER_2, "approve_request", 2, response_key="late")
    responses(app, "late")

    checked = assert_valid_block_kit(app.slack)
    # The modal, two approval messages, their updates (approved, progress, result, rejected), the result.
    assert checked >= 6, checked
    methods = {call.method for call in app.slack.calls}
    assert {"views.open", "chat.postMessage", "chat.update"} <= methods
    assert app.grant_qual.store.get(1).state is RequestState.FAILED  # type: ignore[union-attr]  # one worker failed
    assert app.grant_qual.store.get(2).state is RequestState.REJECTED  # type: ignore[union-attr]


def test_nul_in_reason_is_stored_on_postgresql(fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str) -> None:
    """PostgreSQL's text type cannot hold NUL; a reason with one must still become a request."""
    app = start_app(fake_slack, fake_mturk, postgres_url)
    try:
        reply = app.sender.submit_view(REQUESTER, modal_values(QUAL, WORKERS[0], reason="before\x00after"))
        assert reply.status == 200 and reply.body == ""
        assert "Reason: beforeafter" in message_text(app.approval_message(1))
    finally:
        app.stop()


@pytest.mark.parametrize(
    "payload",
    ["not json", "[]", json.dumps({"type": "block_actions", "channel": False, "actions": [{"action_id": "x"}]})],
    ids=["not-json", "json-list", "channel-not-object"],
)
def test_unsigned_malformed_payloads_are_refused(app: RunningApp, payload: str) -> None:
    reply = app.sender.post({"payload": payload}, sign=False)
    assert reply.status == 401
