"""The App Home: the Home tab each user sees (published on app_home_opened, refreshed when a request it shows
changes), Approve and Reject clicked on it, and the Messages tab's answer to a DM. All through signed requests
to the real app and the fake Slack's views.publish.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.requests import RequestState
from tests.conftest import APPROVER, CHANNEL, OUTSIDER, QUAL, REQUESTER, WORKERS, RunningApp, reject_reason_values
from tests.fakes.slack import BOT_ID, BOT_USER_ID
from tests.slack_sender import message_text

NOT_HERE = ":no_entry: This button is not on request #1's message in the approvals channel; nothing changed."


def open_home(app: RunningApp, user: str) -> dict[str, Any]:
    """The user opens the app's Home tab; the Home the app publishes for them."""
    before = app.slack.home_view(user)
    reply = app.sender.event({"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"})
    assert reply.status == 200
    return app.slack.wait_for(lambda: (v := app.slack.home_view(user)) and v != before and v)


def buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    """(action_id, value) of every button on the view."""
    return [
        (element["action_id"], element.get("value", ""))
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def post_request(app: RunningApp, user: str = REQUESTER) -> dict[str, Any]:
    app.request(f"{QUAL} {' '.join(WORKERS)} value=7", user=user)
    return app.approval_message()


def test_home_shows_what_the_app_does_its_environment_health_and_the_users_requests(app: RunningApp) -> None:
    post_request(app)
    home = open_home(app, REQUESTER)
    text = message_text(home)
    assert home["type"] == "home"
    assert "grants Amazon Mechanical Turk qualifications" in text
    assert "MTurk SANDBOX" in text
    assert "MTurk reachable · balance $10,000.00 · no grant finished yet" in text
    assert "*Your requests*" in text and "#1>" in text and "waiting for a decision" in text
    link = app.slack.calls_to("chat.getPermalink")[-1]
    assert link.args["message_ts"] == app.approval_message()["ts"]
    # A requester who is not an approver has no queue and no Approve buttons; the New request button is there.
    assert "*Waiting for a decision*" not in text
    assert buttons(home) == [("home_new_request", "")]


def test_the_balance_is_asked_of_mturk_at_most_once_a_minute(app: RunningApp) -> None:
    open_home(app, REQUESTER)
    open_home(app, APPROVER)
    open_home(app, REQUESTER)
    assert len(app.mturk.calls("GetAccountBalance")) == 1


def test_an_outsider_sees_what_the_app_does_but_no_requests_and_no_button(app: RunningApp) -> None:
    post_request(app)
    text = message_text(home := open_home(app, OUTSIDER))
    assert "MTurk SANDBOX" in text and "not on the requesters' or approvers' list" in text
    assert "#1" not in text and buttons(home) == []


def test_approvers_see_the_queue_with_the_messages_own_buttons(app: RunningApp) -> None:
    message = post_request(app)
    home = open_home(app, APPROVER)
    assert "*Waiting for a decision*" in message_text(home)
    on_message = [b for b in message["blocks"] if b["type"] == "actions"]
    on_home = [b for b in home["blocks"] if b["type"] == "actions" and b["block_id"] == "decision-1"]
    assert on_home == on_message  # same action IDs, values and confirms: the same listeners take both


def test_approve_on_home_approves_updates_the_message_and_refreshes_home(app: RunningApp) -> None:
    post_request(app)
    home = open_home(app, APPROVER)
    requester_home = open_home(app, REQUESTER)
    app.sender.click(APPROVER, "approve_request", "1", view=home)
    assert app.wait_final().state is RequestState.DONE
    assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}
    message = app.approval_message()
    assert "Approved by <@U0APPROVE>" in message_text(message)
    assert not [b for b in message["blocks"] if b["type"] == "actions"]

    def refreshed(user: str, old: dict[str, Any], shows: str) -> dict[str, Any] | None:
        view = app.slack.home_view(user)
        return view if view and view["hash"] != old["hash"] and shows in message_text(view) else None

    approver_now = app.slack.wait_for(lambda: refreshed(APPROVER, home, "last grant #1 finished"))
    assert ("approve_request", "1") not in buttons(approver_now)
    assert "No request is waiting for a decision." in message_text(approver_now)
    assert app.slack.wait_for(lambda: refreshed(REQUESTER, requester_home, ":white_check_mark: done"))
    assert app.slack.home_view(APPROVER)["id"] == home["id"]  # one Home per user, republished


def test_a_new_request_appears_on_the_home_of_approvers_who_opened_it(app: RunningApp) -> None:
    home = open_home(app, APPROVER)
    assert "No request is waiting for a decision." in message_text(home)
    post_request(app)

    def with_request() -> dict[str, Any] | None:
        view = app.slack.home_view(APPROVER)
        return view if view and ("approve_request", "1") in buttons(view) else None

    assert "#1>" in message_text(app.slack.wait_for(with_request))
    assert app.slack.home_view(OUTSIDER) is None  # nobody else's Home is published unasked


def test_reject_on_home_asks_for_the_reason_and_rejects(app: RunningApp) -> None:
    post_request(app)
    home = open_home(app, APPROVER)
    opened = len(app.slack.calls_to("views.open"))
    app.sender.click(APPROVER, "reject_request", "1", view=home, trigger_id=app.slack.new_trigger_id())
    form = app.slack.wait_for(lambda: app.slack.calls_to("views.open")[opened:])[0].args["view"]
    # The form remembers it was opened from Home: its submission is held to the same surface rule.
    app.sender.submit_view(
        APPROVER,
        reject_reason_values("wrong list"),
        private_metadata=form["private_metadata"],
        callback_id="reject_request_modal",
    )
    request = app.wait_final()
    assert request.state is RequestState.REJECTED and request.decision_reason == "wrong list"
    assert app.mturk.calls("AssociateQualificationWithWorker") == []


def test_home_buttons_keep_the_channels_rules(app: RunningApp) -> None:
    # The requester is an approver too here, but may not approve their own request from Home either.
    post_request(app, user=APPROVER)
    home = open_home(app, APPROVER)
    app.sender.click(APPROVER, "approve_request", "1", view=home, response_key="self")
    answer = app.slack.wait_for(lambda: app.slack.responses_for("self"))[0]["text"]
    assert answer.startswith(":no_entry:") and "Nothing changed." in answer
    assert app.grant_qual.store.get(1).state is RequestState.PENDING


@pytest.mark.parametrize(
    "forged",
    [
        {"type": "modal", "app_id": "A0APP"},  # a view of this app, but not its Home
        {"type": "home", "app_id": "A0OTHERAPP"},  # another app's Home
        {"type": "home"},  # no app named
    ],
)
def test_a_click_from_a_view_that_is_not_this_apps_home_changes_nothing(
    app: RunningApp, forged: dict[str, Any]
) -> None:
    post_request(app)
    view = {"id": "V0FORGED", "team_id": "T0001", "blocks": [], **forged}
    app.sender.click(APPROVER, "approve_request", "1", view=view, response_key="forged")
    assert app.slack.wait_for(lambda: app.slack.responses_for("forged"))[0]["text"] == NOT_HERE
    request = app.grant_qual.store.get(1)
    assert request.state is RequestState.PENDING and request.decided_by is None
    assert app.slack.calls_to("chat.update") == []


def test_new_request_on_home_opens_the_modal(app: RunningApp) -> None:
    home = open_home(app, REQUESTER)
    trigger = app.slack.new_trigger_id()
    payload = app.sender.click_payload(REQUESTER, "home_new_request", "", view=home)
    payload["trigger_id"] = trigger
    payload["actions"][0].pop("value")
    assert app.sender.post({"payload": json.dumps(payload)}).status == 200
    (call,) = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    assert call.args["trigger_id"] == trigger and call.args["view"]["callback_id"] == "grant_request_modal"


def dm_event(user: str, text: str, ts: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": f"D{user}",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        **extra,
    }


def test_a_dm_to_the_app_gets_help_once(app: RunningApp) -> None:
    event = dm_event(REQUESTER, "how do I grant?", "100.000001")
    assert app.sender.event(event).status == 200
    (reply,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert "/grant-qual" in reply["text"] and "SANDBOX" in reply["text"] and "Home tab" in reply["text"]
    app.sender.event(event)  # Slack's retry of the same message
    app.sender.event(dm_event(REQUESTER, "thanks", "100.000002"))
    app.slack.wait_for(lambda: len(app.slack.dms_to(REQUESTER)) == 2)
    assert len(app.slack.dms_to(REQUESTER)) == 2  # one answer per message, however often Slack sends it


def test_the_apps_own_messages_and_edits_get_no_answer(app: RunningApp) -> None:
    app.sender.event(dm_event(BOT_USER_ID, "Request #1 was approved", "200.000001", bot_id=BOT_ID))
    app.sender.event(dm_event(REQUESTER, "", "200.000002", subtype="message_changed"))
    app.sender.event(
        {**dm_event(REQUESTER, "in a channel", "200.000003"), "channel": CHANNEL, "channel_type": "channel"}
    )
    app.sender.event(dm_event(REQUESTER, "marker", "200.000004"))
    (reply,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert "/grant-qual" in reply["text"]
    assert app.slack.dms_to(BOT_USER_ID) == [] and len(app.slack.calls_to("chat.postMessage")) == 1
