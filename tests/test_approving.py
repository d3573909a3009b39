"""Deciding on a request: who may, reject, approve, and exactly one grant per approval."""

from __future__ import annotations

import threading

from bot.requests import RequestState
from tests.conftest import APPROVER, APPROVER_2, OUTSIDER, QUAL, REQUESTER, WORKERS, RunningApp, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text


def post_request(
    app: RunningApp, text: str = f"{QUAL} {' '.join(WORKERS)} value=7", user: str = REQUESTER, request_id: int = 1
) -> None:
    app.request(text, user=user)
    app.approval_message(request_id)


def ephemeral(app: RunningApp, key: str) -> str:
    return app.slack.wait_for(lambda: app.slack.responses_for(key))[0]["text"]


def test_non_approver_click_is_refused_and_request_stays_pending(app: RunningApp) -> None:
    post_request(app)
    app.click(OUTSIDER, "approve_request", response_key="out")
    assert "Only approvers" in ephemeral(app, "out")
    app.click(REQUESTER, "reject_request", response_key="req")
    assert "Only approvers" in ephemeral(app, "req")
    assert app.grant_qual.store.get(1).state is RequestState.PENDING  # type: ignore[union-attr]
    assert app.slack.calls_to("chat.update") == []
    assert app.mturk.calls("AssociateQualificationWithWorker") == []


def test_approver_cannot_approve_own_request(app: RunningApp) -> None:
    post_request(app, user=APPROVER)
    app.click(APPROVER, "approve_request", response_key="self")
    assert "cannot decide on your own request" in ephemeral(app, "self")
    assert app.grant_qual.store.get(1).state is RequestState.PENDING  # type: ignore[union-attr]
    app.click(APPROVER_2, "approve_request")
    assert app.wait_final().state is RequestState.DONE


def test_self_approval_when_allowed(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> None:
    app = start_app(fake_slack, fake_mturk, database_url, ALLOW_SELF_APPROVAL="true")
    try:
        post_request(app, user=APPROVER)
        app.click(APPROVER, "approve_request")
        assert app.wait_final().state is RequestState.DONE
    finally:
        app.stop()


def test_reject_updates_message_replies_in_thread_and_tells_requester(app: RunningApp) -> None:
    post_request(app)
    assert app.reject(APPROVER, "Workers already paid.").status == 200
    request = app.slack.wait_for(lambda: (r := app.grant_qual.store.get(1)) and r.state.is_final and r)
    assert request.state is RequestState.REJECTED and request.decided_by == APPROVER
    message = app.slack.wait_for(lambda: (m := app.approval_message()) and "Rejected" in message_text(m) and m)
    assert not [b for b in message["blocks"] if b["type"] == "actions"]
    assert f"<@{APPROVER}>" in message_text(message)
    (reply,) = app.slack.wait_for(lambda: app.posts("rejected"))
    assert "Rejected" in reply["text"] and "Reason: Workers already paid." in message_text(reply)
    (dm,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert "request #1" in dm["text"] and "was rejected" in dm["text"]
    assert "Reason: Workers already paid." in message_text(dm)
    assert app.mturk.calls("AssociateQualificationWithWorker") == []


def test_approve_grants_each_worker_and_reports(app: RunningApp) -> None:
    post_request(app)
    app.click(APPROVER, "approve_request")
    request = app.wait_final()
    assert request.state is RequestState.DONE
    grants = {g.worker_id: g for g in app.mturk.grants}
    assert set(grants) == set(WORKERS)
    assert all(
        g.integer_value == 7 and g.send_notification and g.qualification_type_id == QUAL for g in grants.values()
    )
    reply = app.summary()
    assert "Granted" in reply["text"] and "all 3 worker(s)" in reply["text"] and "SANDBOX" in reply["text"]
    message = app.slack.wait_for(lambda: (m := app.approval_message()) and "granted 3 of 3" in message_text(m) and m)
    assert f"Approved by <@{APPROVER}>" in message_text(message)
    assert not [b for b in message["blocks"] if b["type"] == "actions"]
    (dm,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert "granted 3, failed 0 in" in dm["text"]


def test_double_clicks_and_slack_retries_grant_once(app: RunningApp) -> None:
    post_request(app)
    app.mturk.latency = 0.2  # keep the first grant running while the duplicates arrive
    threads = [threading.Thread(target=app.click, args=(APPROVER, "approve_request")) for _ in range(4)]
    threads.append(threading.Thread(target=app.click, args=(APPROVER_2, "approve_request")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for retry in (1, 2):
        assert app.click(APPROVER, "approve_request", retry_num=retry).status == 200
    app.wait_final()
    app.click(APPROVER, "reject_request", response_key="late")
    assert "already done" in ephemeral(app, "late")
    assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}
    assert len(app.mturk.calls("AssociateQualificationWithWorker")) == 3
    assert len(app.posts("finished")) == 1
    app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))  # the DM follows the summary and its file
    assert len(app.slack.dms_to(REQUESTER)) == 1


def test_history_survives_a_restart(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> None:
    first = start_app(fake_slack, fake_mturk, database_url)
    post_request(first)
    first.click(APPROVER, "approve_request")
    first.wait_final()
    first.stop()

    second = start_app(fake_slack, fake_mturk, database_url)
    try:
        request = second.grant_qual.store.get(1)
        assert request is not None and request.state is RequestState.DONE
        assert request.decided_by == APPROVER and request.decided_at is not None
        outcomes = second.grant_qual.store.outcomes(1)
        assert [(o.worker_id, o.integer_value, o.status.value) for o in outcomes] == [
            (w, 7, "granted") for w in WORKERS
        ]
        post_request(second, f"{QUAL} {WORKERS[0]}", request_id=2)
        assert second.grant_qual.store.get(2) is not None
    finally:
        second.stop()
