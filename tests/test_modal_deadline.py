"""The grant modal's deadline: a submission whose file takes too long to read and store is answered within
Slack's window by turning the modal into "reading your file", and its outcome comes later, in the modal (if it
is still open) and where the requester asked. The deadline is set to 0 here, so every submission is late
without any clock involved. Through signed requests and the fake Slack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.requests import RequestState
from tests.block_kit import assert_valid_block_kit, validate_view
from tests.conftest import CHANNEL, QUAL, REQUESTER, RunningApp, posted_for
from tests.slack_sender import message_text, modal_values

WORKER_IDS = [f"A1LATE{i:08d}" for i in range(30)]


@pytest.fixture
def late(app: RunningApp) -> Iterator[RunningApp]:
    app.grant_qual.ack_deadline.seconds = 0
    yield app


def open_modal(app: RunningApp) -> str:
    """Open the grant modal with the global shortcut, as Slack shows it; its view ID."""
    app.sender.shortcut(REQUESTER)
    (call,) = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    with app.slack.lock:
        (view_id,) = [vid for vid, v in app.slack.views.items() if v["callback_id"] == "grant_request_modal"]
    assert call.args["view"]["callback_id"] == "grant_request_modal"
    return view_id


def modal_text(app: RunningApp, view_id: str, wanted: str) -> str:
    """The modal's text once it says `wanted` (it is updated after the ack, off the listener)."""

    def shown() -> str | None:
        with app.slack.lock:
            text = message_text({"blocks": app.slack.views[view_id]["blocks"]})
        return text if wanted in text else None

    return app.slack.wait_for(shown)


def submit_file(app: RunningApp, content: bytes, view_id: str | None, response_key: str | None = "late") -> Any:
    file = app.slack.host_file("F0LATE", "Batch_1_batch_results.csv", content)
    metadata = json.dumps({"response_url": app.slack.response_url(response_key)}) if response_key else "{}"
    return app.sender.submit_view(
        REQUESTER, modal_values(QUAL, value="4", files=[file]), private_metadata=metadata, view_id=view_id
    )


def reading_answer(reply: Any) -> dict[str, Any]:
    """The ack: the modal turned into one that says the file is being read, with nothing to submit."""
    assert reply.status == 200
    answer = reply.json()
    assert answer["response_action"] == "update"
    view = answer["view"]
    validate_view(view)
    assert "submit" not in view and view["close"]["text"] == "Close"
    text = message_text({"blocks": view["blocks"]})
    assert "SANDBOX" in text and "Reading and checking your workers" in text
    return view


def approval_posts(app: RunningApp) -> list[dict[str, Any]]:
    with app.slack.lock:
        return [m for m in app.slack.messages if m["channel"] == CHANNEL and posted_for(m) == "submitted"]


def test_a_late_submission_is_saved_shown_in_the_modal_and_posted_once(late: RunningApp) -> None:
    app = late
    view_id = open_modal(app)
    reading_answer(submit_file(app, ("WorkerId\n" + "\n".join(WORKER_IDS) + "\n").encode(), view_id))
    assert "Request #1 is saved" in modal_text(app, view_id, "Request #1 is saved")
    assert "Workers (30)" in message_text(app.approval_message())
    told = app.slack.wait_for(lambda: [r for r in app.slack.responses_for("late") if "waiting for approval" in str(r)])
    assert len(told) == 1
    assert len(approval_posts(app)) == 1
    request = app.grant_qual.store.get(1)
    assert request is not None and request.state is RequestState.PENDING and request.worker_count == 30
    assert_valid_block_kit(app.slack)  # the views.update calls' views among them


def test_a_late_bad_file_is_shown_in_the_modal_and_told_and_nothing_is_stored(late: RunningApp) -> None:
    app = late
    view_id = open_modal(app)
    content = b"WorkerId,Score\nA1GOOD00000001,1\nnot-a-worker,2\n"
    reading_answer(submit_file(app, content, view_id))
    text = modal_text(app, view_id, "Nothing was saved")
    # The same message the inline error gives, under the field's label, and how to go on.
    assert "…or a file of workers" in text and "line 3" in text and "not-a-worker" in text
    assert "Open the form again" in text and "SANDBOX" in text
    (told,) = app.slack.wait_for(lambda: app.slack.responses_for("late"))
    assert "not saved" in told["text"] and "line 3" in told["text"] and "not-a-worker" in told["text"]
    assert app.grant_qual.store.requests() == [] and approval_posts(app) == []
    assert_valid_block_kit(app.slack)


def test_a_closed_modal_still_gets_its_answer_by_dm(late: RunningApp) -> None:
    """views.update answers not_found once the modal is closed: the requester is told anyway, here by DM
    (the global shortcut has no response_url)."""
    app = late
    content = b"WorkerId\nA1GOOD00000001\na1lower\n"
    reading_answer(submit_file(app, content, view_id="V0CLOSED", response_key=None))
    (dm,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert "not saved" in dm["text"] and "a1lower" in dm["text"]
    (update,) = app.slack.calls_to("views.update")
    assert update.args["view_id"] == "V0CLOSED"
    assert app.grant_qual.store.requests() == []


def test_a_closed_modal_does_not_stop_a_good_request(late: RunningApp) -> None:
    app = late
    app.slack.error_next("views.update", "not_found")
    view_id = open_modal(app)
    reading_answer(submit_file(app, ("WorkerId\n" + "\n".join(WORKER_IDS) + "\n").encode(), view_id))
    app.approval_message()
    app.slack.wait_for(lambda: [r for r in app.slack.responses_for("late") if "waiting for approval" in str(r)])
    assert len(approval_posts(app)) == 1


def test_a_late_failure_is_logged_and_told(late: RunningApp, monkeypatch: pytest.MonkeyPatch) -> None:
    app = late

    def broken(*args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(app.grant_qual.service, "submit", broken)
    view_id = open_modal(app)
    reading_answer(submit_file(app, b"WorkerId\nA1GOOD00000001\n", view_id))
    assert "Something went wrong" in modal_text(app, view_id, "Something went wrong")
    (told,) = app.slack.wait_for(lambda: app.slack.responses_for("late"))
    assert "Something went wrong; nothing was posted" in told["text"]


def test_a_replayed_late_submission_is_taken_once(late: RunningApp) -> None:
    app = late
    view_id = open_modal(app)
    file = app.slack.host_file("F0LATE", "ids.txt", ("\n".join(WORKER_IDS) + "\n").encode(), "text")
    metadata = json.dumps({"response_url": app.slack.response_url("late")})
    payload = app.sender.view_submission_payload(
        REQUESTER, modal_values(QUAL, files=[file]), private_metadata=metadata, view_id=view_id
    )
    body, headers = app.sender.prepare({"payload": json.dumps(payload)})
    reading_answer(app.sender.send(body, headers))
    replayed = app.sender.send(body, headers)
    assert replayed.status == 200 and replayed.body == ""
    modal_text(app, view_id, "Request #1 is saved")
    app.slack.wait_for(lambda: [r for r in app.slack.responses_for("late") if "waiting for approval" in str(r)])
    assert [r.id for r in app.grant_qual.store.requests()] == [1]
    assert len(approval_posts(app)) == 1
    assert len(app.slack.calls_to("views.update")) == 1
