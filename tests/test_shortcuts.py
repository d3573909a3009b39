"""Shortcuts: the global "Grant a qualification" opens the grant modal from anywhere; the message shortcut
"Grant to these workers" opens it with the message's worker file already read, and the submission reads that
file again (the same parsing and inline errors as an upload). Through signed requests and the fake Slack.
"""

from __future__ import annotations

import json
from typing import Any

from bot.requests import RequestState
from tests.conftest import APPROVER, OUTSIDER, QUAL, REQUESTER, RunningApp
from tests.slack_sender import message_text, modal_values

WORKER_IDS = ["A1SHORTCUT00001", "A1SHORTCUT00002", "A1SHORTCUT00003"]


def opened_view(app: RunningApp) -> dict[str, Any]:
    (call,) = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    return call.args["view"]


def message_with(app: RunningApp, *files: dict[str, Any], ts: str = "300.000001") -> dict[str, Any]:
    """A message in a channel as a shortcut's payload shows it, with these files attached."""
    return {"type": "message", "user": "U0UPLOADER", "ts": ts, "text": "workers from the pilot", "files": list(files)}


def test_the_global_shortcut_opens_the_modal(app: RunningApp) -> None:
    trigger = app.slack.new_trigger_id()
    payload = app.sender.shortcut_payload(REQUESTER)
    payload["trigger_id"] = trigger
    assert app.sender.post({"payload": json.dumps(payload)}).status == 200
    (call,) = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    assert call.args["trigger_id"] == trigger  # used within Slack's 3 seconds, once
    view = call.args["view"]
    assert view["callback_id"] == "grant_request_modal" and "SANDBOX" in message_text({"blocks": view["blocks"]})


def test_an_outsider_gets_a_modal_that_says_why_not(app: RunningApp) -> None:
    app.sender.shortcut(OUTSIDER)
    view = opened_view(app)
    assert view.get("callback_id") != "grant_request_modal" and "submit" not in view
    assert message_text({"blocks": view["blocks"]}).strip().startswith(":no_entry:")


def test_an_outsiders_message_shortcut_downloads_nothing(app: RunningApp) -> None:
    file = app.slack.host_file("F0OUT", "workers.csv", "\n".join(WORKER_IDS).encode(), "csv")
    app.sender.message_shortcut(OUTSIDER, message_with(app, file))
    assert message_text({"blocks": opened_view(app)["blocks"]}).strip().startswith(":no_entry:")
    assert app.slack.calls_to("files.info") == [] and app.slack.downloads == []


def test_the_message_shortcut_reads_the_file_and_the_submission_posts_the_request(app: RunningApp) -> None:
    content = ("WorkerId\n" + "\n".join(WORKER_IDS + WORKER_IDS[:1]) + "\n").encode()
    file = app.slack.host_file("F0PILOT", "pilot workers.csv", content, "csv")
    trigger = app.slack.new_trigger_id()
    app.sender.message_shortcut(REQUESTER, message_with(app, file), trigger_id=trigger, response_key="sc")
    (call,) = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    assert call.args["trigger_id"] == trigger
    view = call.args["view"]
    assert view["callback_id"] == "grant_request_modal"
    assert "Workers from pilot workers.csv: 3" in message_text({"blocks": view["blocks"]})
    # Nothing typed and nothing uploaded in the form: the workers come from the message's file, read again.
    values = modal_values(QUAL, value="5")
    reply = app.sender.submit_view(REQUESTER, values, private_metadata=view["private_metadata"])
    assert reply.status == 200 and reply.body == ""
    assert "Workers (3)" in message_text(app.approval_message())
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert {g.worker_id: g.integer_value for g in app.mturk.grants} == {w: 5 for w in WORKER_IDS}


def test_a_file_with_problems_is_shown_in_the_modal_and_refused_inline_at_submission(app: RunningApp) -> None:
    file = app.slack.host_file("F0BAD", "bad.csv", b"WorkerId\nnot a worker id\n", "csv")
    app.sender.message_shortcut(REQUESTER, message_with(app, file))
    view = opened_view(app)
    shown = message_text({"blocks": view["blocks"]})
    assert ":warning: *bad.csv*" in shown and "line 2" in shown
    reply = app.sender.submit_view(REQUESTER, modal_values(QUAL), private_metadata=view["private_metadata"])
    errors = reply.json()
    assert errors["response_action"] == "errors" and "line 2" in errors["errors"]["workers_file"]
    assert app.grant_qual.store.get(1) is None


def test_a_message_without_a_file_gets_a_helpful_answer(app: RunningApp) -> None:
    image = {"id": "F0PIC", "name": "chart.png", "filetype": "png", "mimetype": "image/png"}
    app.sender.message_shortcut(REQUESTER, message_with(app, image))
    view = opened_view(app)
    text = message_text({"blocks": view["blocks"]})
    assert "no CSV or text file attached" in text and "/grant-qual" in text
    assert "submit" not in view and app.slack.calls_to("files.info") == []


def test_a_file_slack_cannot_give_gets_a_modal_that_says_so(app: RunningApp) -> None:
    gone = {"id": "F0GONE", "name": "deleted.csv", "filetype": "csv", "mimetype": "text/csv"}
    app.sender.message_shortcut(REQUESTER, message_with(app, gone))
    view = opened_view(app)
    text = message_text({"blocks": view["blocks"]})
    assert text.strip().startswith(":x: deleted.csv could not be read") and "submit" not in view
