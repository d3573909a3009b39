"""A button counts only where the app rendered it for that request: Approve and Reject on the request's message
in the approvals channel, Retry failed on its latest result summary. A click carrying the same value from a
DM, another message, another channel or a view changes nothing, and the clicker is told so.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.requests import GrantRequest, RequestState
from bot.service import ClickOrigin, on_approval_message, on_current_summary
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, WORKERS, RunningApp
from tests.slack_sender import message_text

NOT_HERE = ":no_entry: This button is not on request #1's message in the approvals channel; nothing changed."


def post_request(app: RunningApp, request_id: int = 1) -> dict:
    app.request(f"{QUAL} {' '.join(WORKERS)} value=7")
    return app.approval_message(request_id)


def answer(app: RunningApp, key: str) -> str:
    return app.slack.wait_for(lambda: app.slack.responses_for(key))[0]["text"]


def assert_untouched(app: RunningApp, request_id: int = 1) -> None:
    request = app.grant_qual.store.get(request_id)
    assert request is not None and request.state is RequestState.PENDING and request.decided_by is None
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
    assert app.slack.calls_to("chat.update") == []


@pytest.mark.parametrize("action", ["approve_request", "reject_request"])
def test_a_click_from_a_dm_changes_nothing(app: RunningApp, action: str) -> None:
    message = post_request(app)
    app.sender.click(APPROVER, action, "1", channel_id=f"D{APPROVER}", message_ts=message["ts"], response_key="dm")
    assert answer(app, "dm") == NOT_HERE
    assert_untouched(app)


def test_a_click_on_another_requests_message_changes_nothing(app: RunningApp) -> None:
    post_request(app)
    app.request(f"{QUAL} {WORKERS[0]}")
    other = app.approval_message(2)
    app.sender.click(APPROVER, "approve_request", "1", message=other, channel_id=CHANNEL, response_key="other")
    assert answer(app, "other") == NOT_HERE
    assert_untouched(app, 1)
    assert_untouched(app, 2)


def test_a_click_in_another_channel_with_the_messages_ts_changes_nothing(app: RunningApp) -> None:
    message = post_request(app)
    app.sender.click(APPROVER, "approve_request", "1", channel_id="C0ELSEWHERE", message=message, response_key="c")
    assert answer(app, "c") == NOT_HERE
    assert_untouched(app)


def test_a_click_from_a_view_changes_nothing(app: RunningApp) -> None:
    # Only the app's own Home tab shows request buttons (tests/test_app_home.py); a modal does not.
    post_request(app)
    view = {"id": "V0MODAL", "team_id": "T0001", "type": "modal", "blocks": [], "app_id": "A0APP"}
    app.sender.click(APPROVER, "approve_request", "1", view=view, response_key="view")
    assert answer(app, "view") == NOT_HERE
    assert_untouched(app)


def test_the_same_click_on_the_requests_message_approves(app: RunningApp) -> None:
    message = post_request(app)
    app.sender.click(APPROVER, "approve_request", "1", channel_id=f"D{APPROVER}", message_ts=message["ts"])
    app.sender.click(APPROVER, "approve_request", "1", channel_id=CHANNEL, message=message)
    assert app.wait_final().state is RequestState.DONE
    assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}


def test_retry_failed_counts_only_on_the_latest_summary(app: RunningApp) -> None:
    app.mturk.unknown_workers.add(WORKERS[0])
    message = post_request(app)
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.FAILED
    summary = app.summary()
    button = next(e for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"])
    app.mturk.unknown_workers.clear()
    calls = len(app.mturk.calls("AssociateQualificationWithWorker"))

    value = button["value"]
    app.sender.click(APPROVER, "retry_failed", value, channel_id=CHANNEL, message=message, response_key="approval")
    app.sender.click(
        APPROVER, "retry_failed", value, channel_id=f"D{APPROVER}", message_ts=summary["ts"], response_key="dm"
    )
    assert answer(app, "approval") == NOT_HERE and answer(app, "dm") == NOT_HERE
    request = app.grant_qual.store.get(1)
    assert request is not None and request.round == 1 and request.state is RequestState.FAILED
    assert len(app.mturk.calls("AssociateQualificationWithWorker")) == calls

    app.sender.click(APPROVER, "retry_failed", value, channel_id=CHANNEL, message=summary)
    app.slack.wait_for(lambda: len(app.posts("finished")) == 2, timeout=20)
    assert "all 3 worker(s)" in message_text(app.posts("finished")[1])


# --- the rule itself, without Slack ----------------------------------------------------------------------------


def stored_request(**where: str | None) -> GrantRequest:
    return GrantRequest(
        id=1,
        requester_id=REQUESTER,
        qualification_type_id=QUAL,
        qualification_name="Passed screener",
        send_notification=True,
        reason="",
        mturk_env="sandbox",
        state=RequestState.PENDING,
        worker_count=1,
        created_at=datetime.now(UTC),
        **where,  # type: ignore[arg-type]
    )


POSTED = stored_request(channel_id=CHANNEL, message_ts="100.000001", summary_ts="200.000002")


def test_approval_counts_only_on_the_requests_message() -> None:
    assert on_approval_message(ClickOrigin.message(CHANNEL, "100.000001"), POSTED)
    assert not on_approval_message(ClickOrigin.message(CHANNEL, "200.000002"), POSTED)  # the summary
    assert not on_approval_message(ClickOrigin.message("C0OTHER", "100.000001"), POSTED)
    assert not on_approval_message(ClickOrigin.message("DU0APPROVE", "100.000001"), POSTED)
    assert not on_approval_message(ClickOrigin.view("V0HOME"), POSTED)
    assert not on_approval_message(ClickOrigin(), POSTED)


def test_retry_counts_only_on_the_latest_summary() -> None:
    assert on_current_summary(ClickOrigin.message(CHANNEL, "200.000002"), POSTED)
    assert not on_current_summary(ClickOrigin.message(CHANNEL, "100.000001"), POSTED)  # the approval message
    assert not on_current_summary(ClickOrigin.message("C0OTHER", "200.000002"), POSTED)


def test_a_request_not_posted_yet_has_no_message_to_click() -> None:
    unposted = stored_request()
    assert not on_approval_message(ClickOrigin(), unposted)
    assert not on_approval_message(ClickOrigin.message("", ""), unposted)
    assert not on_current_summary(ClickOrigin.message(CHANNEL, ""), stored_request(channel_id=CHANNEL))
