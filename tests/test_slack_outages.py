"""When Slack is down, rate-limits or loses answers, nothing is lost and nothing is posted twice."""

from __future__ import annotations

import time

from bot.requests import DeliveryState, EventKind, RequestState
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, WORKERS, RunningApp


def finished_posts(app: RunningApp) -> list[dict]:
    return app.posts("finished")


def test_result_waits_in_the_database_while_slack_is_down(app: RunningApp) -> None:
    app.request(f"{QUAL} {' '.join(WORKERS)}")
    app.approval_message()
    app.slack.unavailable = True
    app.click(APPROVER, "approve_request")
    app.slack.wait_for(lambda: app.grant_qual.store.get(1).state is RequestState.DONE)  # type: ignore[union-attr]
    time.sleep(1.0)
    events = app.grant_qual.store.events(1)
    assert [e.kind.value for e in events] == ["submitted", "approved", "finished"]
    assert all(e.delivery_state in (DeliveryState.PENDING, DeliveryState.SENDING) for e in events[1:])
    assert app.slack.injected_faults["unavailable"] > 0
    # The outcome is in the database, not yet in Slack (the thread holds at most the request's preview CSV).
    assert [m for m in app.thread() if not m.get("files")] == []

    app.slack.unavailable = False
    app.slack.wait_for(lambda: finished_posts(app), timeout=30)
    app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER), timeout=30)
    time.sleep(1.0)
    assert len(finished_posts(app)) == 1 and len(app.slack.dms_to(REQUESTER)) == 1
    assert all(e.delivery_state is DeliveryState.DELIVERED for e in app.grant_qual.store.events(1))


def test_rate_limits_are_waited_out(app: RunningApp) -> None:
    app.request(f"{QUAL} {WORKERS[0]}")
    app.approval_message()
    app.slack.fail_next("chat.postMessage", status=429, times=2, retry_after=1)
    app.click(APPROVER, "approve_request")
    app.slack.wait_for(lambda: finished_posts(app), timeout=30)
    assert len(finished_posts(app)) == 1


def test_a_lost_answer_does_not_duplicate_the_result(app: RunningApp) -> None:
    app.request(f"{QUAL} {WORKERS[0]}")
    app.approval_message()
    app.slack.drop_next("chat.postMessage")  # the next thread post lands, but its answer is lost
    app.click(APPROVER, "approve_request")
    store = app.grant_qual.store
    # Wait for the result's event too: before the grant finishes, every event that exists may be delivered.
    app.slack.wait_for(
        lambda: (
            (events := store.events(1))
            and events[-1].kind is EventKind.FINISHED
            and all(e.delivery_state is DeliveryState.DELIVERED for e in events)
        ),
        timeout=30,
    )
    time.sleep(1.0)
    assert app.slack.injected_faults["drop"] == 1
    assert app.slack.calls_to("conversations.replies")  # it looked before posting again
    assert len(finished_posts(app)) == 1 and len(app.posts("approved")) == 1
    assert len(app.slack.dms_to(REQUESTER)) == 1


def test_a_lost_answer_to_the_request_post_does_not_duplicate_it(app: RunningApp) -> None:
    app.slack.drop_next("chat.postMessage")
    app.request(f"{QUAL} {WORKERS[0]}", response_key="lost")
    note = app.slack.wait_for(lambda: app.slack.responses_for("lost"))[0]["text"]
    assert "saved" in note and "as soon as Slack does" in note
    app.slack.wait_for(lambda: app.grant_qual.store.get(1).message_ts, timeout=30)  # type: ignore[union-attr]
    time.sleep(1.0)
    top_level = [m for m in app.slack.messages if m["channel"] == CHANNEL and not m["thread_ts"]]
    assert len(top_level) == 1
    assert app.grant_qual.store.get(1).message_ts == top_level[0]["ts"]  # type: ignore[union-attr]
    assert app.slack.calls_to("conversations.history")


def test_a_lost_answer_to_the_dm_does_not_send_it_twice(app: RunningApp) -> None:
    app.request(f"{QUAL} {WORKERS[0]}")
    app.approval_message()
    app.slack.drop_next("chat.postMessage", channel=REQUESTER)  # the DM lands, but its answer is lost
    app.click(APPROVER, "approve_request")
    store = app.grant_qual.store
    # Wait for the result's event too: before the grant finishes, every event that exists may be delivered.
    app.slack.wait_for(
        lambda: (
            (events := store.events(1))
            and events[-1].kind is EventKind.FINISHED
            and all(e.delivery_state is DeliveryState.DELIVERED for e in events)
        ),
        timeout=30,
    )
    time.sleep(1.0)
    assert app.slack.injected_faults["drop"] == 1
    assert [call.args["channel"] for call in app.slack.calls_to("conversations.history")] == [f"D{REQUESTER}"]
    assert len(app.slack.dms_to(REQUESTER)) == 1
    assert len(finished_posts(app)) == 1
