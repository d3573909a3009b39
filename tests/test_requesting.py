"""Requesting a grant: the one-line command, help, the modal, validation and the allowlist."""

from __future__ import annotations

import json

from tests.conftest import APPROVER, CHANNEL, OUTSIDER, QUAL, QUAL_NAME, REQUESTER, WORKERS, RunningApp
from tests.slack_sender import message_text, modal_values


def responses(app: RunningApp, key: str, count: int = 1) -> list[dict]:
    return app.slack.wait_for(lambda: (r := app.slack.responses_for(key)) and len(r) >= count and r)


def test_command_posts_request_for_approval_and_links_it(app: RunningApp) -> None:
    reply = app.request(
        f"{QUAL} {WORKERS[0]}, {WORKERS[1]}\n{WORKERS[2]} {WORKERS[0]} value=90 notify=no reason=passed the screener",
        response_key="r1",
    )
    assert reply.status == 200

    message = app.approval_message(1)
    text = message_text(message)
    assert message["channel"] == CHANNEL
    assert f"<@{REQUESTER}>" in text
    assert QUAL in text and QUAL_NAME in text
    assert "90" in text and "SANDBOX" in text
    assert all(w in text for w in WORKERS)
    assert "passed the screener" in text
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["approve_request", "reject_request", "cancel_request"]
    assert "confirm" in buttons[0]

    (note,) = responses(app, "r1")
    assert note["response_type"] == "ephemeral"
    assert "Request #1" in note["text"] and "waiting for approval" in note["text"]
    assert "https://fake.slack.com/archives/" in note["text"]
    request = app.grant_qual.store.get(1)
    assert request is not None and request.worker_count == 3 and not request.send_notification
    assert app.mturk.calls("AssociateQualificationWithWorker") == []


def test_help_shows_usage(app: RunningApp) -> None:
    app.request("help", response_key="h")
    (note,) = responses(app, "h")
    assert "/grant-qual &lt;QUALIFICATION_TYPE_ID&gt; &lt;WORKER_ID&gt;" in note["text"]  # escaped mrkdwn
    assert note["response_type"] == "ephemeral"


def test_bad_line_gets_error_and_usage_and_posts_nothing(app: RunningApp) -> None:
    app.request(f"{QUAL} A1GOOD00000001 a1lower BADID value=ten", response_key="bad")
    (note,) = responses(app, "bad")
    assert "Nothing was posted" in note["text"]
    assert "`a1lower`" in note["text"] and "`BADID`" in note["text"]
    assert "`ten` is not a whole number" in note["text"]
    assert "/grant-qual &lt;QUALIFICATION_TYPE_ID&gt;" in note["text"]
    assert app.slack.calls_to("chat.postMessage") == []
    assert app.grant_qual.store.requests() == []


def test_unknown_qualification_type_is_refused(app: RunningApp) -> None:
    app.mturk.foreign_types["3SOMEONEELSES0000001"] = "Not ours"
    for key, qual in (("unknown", "3DOESNOTEXIST0000001"), ("foreign", "3SOMEONEELSES0000001")):
        app.request(f"{qual} {WORKERS[0]}", response_key=key)
        (note,) = responses(app, key)
        assert "is not a qualification type created by this requester account in the SANDBOX" in note["text"]
    assert app.grant_qual.store.requests() == []
    assert app.slack.calls_to("chat.postMessage") == []


def test_outsider_is_refused_and_nothing_happens(app: RunningApp) -> None:
    app.request(f"{QUAL} {WORKERS[0]}", user=OUTSIDER, response_key="o1")
    app.request("", user=OUTSIDER, response_key="o2")
    for key in ("o1", "o2"):
        (note,) = responses(app, key)
        assert "Only requesters can request qualification grants" in note["text"]
    assert app.slack.calls_to("views.open") == []
    assert app.slack.calls_to("chat.postMessage") == []
    assert app.grant_qual.store.requests() == []


def test_empty_command_opens_the_modal(app: RunningApp) -> None:
    app.request("", response_key="m")
    (call,) = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    view = call.args["view"]
    assert call.args["trigger_id"].startswith("trigger-")
    assert view["callback_id"] == "grant_request_modal"
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert {"qualification_type", "workers", "value", "notify", "reason"} <= set(blocks)
    assert blocks["notify"]["element"]["initial_options"]  # checked by default, as in the API
    assert "MTurk gives 1" in blocks["value"]["hint"]["text"]
    assert "SANDBOX" in message_text({"blocks": view["blocks"]})
    assert json.loads(view["private_metadata"])["response_url"].endswith("/m")


def test_modal_submission_posts_request(app: RunningApp) -> None:
    metadata = json.dumps({"response_url": app.slack.response_url("modal")})
    values = modal_values(QUAL, f"{WORKERS[0]}\n{WORKERS[1]},{WORKERS[1]} ", "", notify=True, reason="bonus round")
    reply = app.sender.submit_view(REQUESTER, values, private_metadata=metadata)
    assert reply.status == 200 and reply.body == ""
    message = app.approval_message(1)
    assert "bonus round" in message_text(message)
    assert "1 (MTurk's default)" in message_text(message)
    (note,) = responses(app, "modal")
    assert "Request #1" in note["text"]
    request = app.grant_qual.store.get(1)
    assert request is not None and request.worker_count == 2 and request.send_notification


def test_modal_errors_come_back_inline_naming_each_bad_worker(app: RunningApp) -> None:
    values = modal_values("bad qual", f"{WORKERS[0]} A1bad B2222 ", "1.5")
    reply = app.sender.submit_view(REQUESTER, values)
    assert reply.status == 200
    answer = reply.json()
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert "`A1bad`" in errors["workers"] and "`B2222`" in errors["workers"]
    assert "not a whole number" in errors["value"]
    assert "not a qualification type ID" in errors["qualification_type"]
    assert app.grant_qual.store.requests() == []
    assert app.slack.calls_to("chat.postMessage") == []


def test_modal_unknown_type_and_outsider_errors_inline(app: RunningApp) -> None:
    unknown = app.sender.submit_view(REQUESTER, modal_values("3NOPE000000000000001", WORKERS[0])).json()
    assert "not a qualification type created by this requester account" in unknown["errors"]["qualification_type"]
    outsider = app.sender.submit_view(OUTSIDER, modal_values(QUAL, WORKERS[0])).json()
    assert "Only requesters can request" in outsider["errors"]["qualification_type"]
    assert app.grant_qual.store.requests() == []


def test_approver_may_also_request_when_listed(app: RunningApp) -> None:
    app.request(f"{QUAL} {WORKERS[0]}", user=APPROVER, response_key="a")
    assert "Request #1" in responses(app, "a")[0]["text"]
