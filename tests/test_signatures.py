"""Only requests signed by Slack, recently, reach the app: anything else gets 401 and changes nothing."""

from __future__ import annotations

import time

from tests.conftest import APPROVER, QUAL, WORKERS, RunningApp


def test_forged_stale_and_unsigned_requests_get_401(app: RunningApp) -> None:
    text = f"{QUAL} {WORKERS[0]}"
    assert app.request(text, secret="not-the-signing-secret").status == 401
    assert app.request(text, timestamp=int(time.time()) - 6 * 60).status == 401
    assert app.request(text, sign=False).status == 401
    assert app.sender.click(APPROVER, "approve_request", "1", secret="forged").status == 401
    time.sleep(0.3)
    assert app.grant_qual.store.requests() == []
    assert app.slack.responses == [] and app.slack.calls_to("chat.postMessage") == []


def test_forged_approval_changes_nothing(app: RunningApp) -> None:
    app.request(f"{QUAL} {WORKERS[0]}")
    message = app.approval_message()
    stale = int(time.time()) - 301
    assert app.sender.click(APPROVER, "approve_request", "1", message_ts=message["ts"], timestamp=stale).status == 401
    assert app.sender.click(APPROVER, "approve_request", "1", message_ts=message["ts"], secret="x").status == 401
    time.sleep(0.3)
    assert app.grant_qual.store.get(1).state.value == "pending"  # type: ignore[union-attr]
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
