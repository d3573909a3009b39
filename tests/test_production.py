"""MTURK_ENV=production is an explicit choice that every message shows."""

from __future__ import annotations

from tests.conftest import APPROVER, QUAL, REQUESTER, WORKERS, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text


def test_every_message_says_production(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> None:
    app = start_app(fake_slack, fake_mturk, database_url, MTURK_ENV="production")
    try:
        app.request(f"{QUAL} {WORKERS[0]}", response_key="p")
        message = app.approval_message()
        text = message_text(message)
        assert "PRODUCTION" in text and "SANDBOX" not in text
        approve = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
        assert "PRODUCTION" in approve["confirm"]["text"]["text"]
        assert "PRODUCTION" in app.slack.wait_for(lambda: app.slack.responses_for("p"))[0]["text"]
        app.click(APPROVER, "approve_request")
        app.wait_final()
        assert "PRODUCTION" in message_text(app.summary())
        assert "PRODUCTION" in app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))[0]["text"]
        assert "PRODUCTION" in message_text(app.approval_message())
        app.request("help", response_key="h")
        assert "PRODUCTION" in app.slack.wait_for(lambda: app.slack.responses_for("h"))[0]["text"]
    finally:
        app.stop()
