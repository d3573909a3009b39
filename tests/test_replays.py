"""Replays, retries and re-deliveries: each command and each form submission is taken once, on SQLite and on
PostgreSQL, across replicas and restarts; the copies are acknowledged and do nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from bot.slack.replays import delivery_key, delivery_kind
from bot.store import DELIVERY_KEYS_KEPT, GrantStore, deliveries_taken, now
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, WORKERS, RunningApp, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackResponse, modal_values


@pytest.fixture
def any_app(fake_slack: FakeSlack, fake_mturk: FakeMTurk, any_database_url: str) -> Iterator[RunningApp]:
    running = start_app(fake_slack, fake_mturk, any_database_url)
    yield running
    running.stop()


def approval_posts(app: RunningApp) -> list[dict]:
    """The messages posted in the approval channel itself (not in a thread): one per request."""
    with app.slack.lock:
        return [m for m in app.slack.messages if m["channel"] == CHANNEL and not m["thread_ts"]]


def settle(app: RunningApp, requests: int) -> None:
    """Wait until `requests` requests are posted, then long enough for any extra copy to show."""
    app.slack.wait_for(lambda: len(approval_posts(app)) >= requests)
    time.sleep(0.5)


def test_a_command_replayed_byte_for_byte_creates_one_request_granted_once(any_app: RunningApp) -> None:
    app = any_app
    form = app.sender.command_form(REQUESTER, f"{QUAL} {WORKERS[0]} {WORKERS[1]} value=4", response_key="once")
    body, headers = app.sender.prepare(form)
    replies = [app.sender.send(body, headers) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200] and [r.body for r in replies[1:]] == ["", ""]
    settle(app, 1)
    assert len(app.grant_qual.store.requests()) == 1
    assert len(approval_posts(app)) == 1 and len(app.slack.responses_for("once")) == 1

    assert app.click(APPROVER, "approve_request").status == 200
    app.wait_final()
    assert app.mturk.grant_counts() == {WORKERS[0]: 1, WORKERS[1]: 1}


def test_a_retried_command_re_signed_later_creates_one_request(any_app: RunningApp) -> None:
    app = any_app
    form = app.sender.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}", response_key="retried")
    assert app.sender.post(form, timestamp=int(time.time()) - 10).status == 200
    for retry in (1, 2):
        assert app.sender.post(form, retry_num=retry).status == 200
    settle(app, 1)
    assert len(app.grant_qual.store.requests()) == 1 and len(app.slack.responses_for("retried")) == 1


def test_copies_arriving_together_create_one_request(any_app: RunningApp) -> None:
    app = any_app
    body, headers = app.sender.prepare(app.sender.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}"))
    replies: list[SlackResponse] = []
    copies = [threading.Thread(target=lambda: replies.append(app.sender.send(body, headers))) for _ in range(6)]
    for copy in copies:
        copy.start()
    for copy in copies:
        copy.join()
    assert [r.status for r in replies] == [200] * 6
    settle(app, 1)
    assert len(app.grant_qual.store.requests()) == 1


def test_a_repeated_command_opens_one_form_and_answers_once(any_app: RunningApp) -> None:
    app = any_app
    opening = app.sender.command_form(REQUESTER, "")
    refused = app.sender.command_form(REQUESTER, "not a request", response_key="refused")
    for form in (opening, refused):
        for retry in (None, 1):
            assert app.sender.post(form, retry_num=retry).status == 200
    app.slack.wait_for(lambda: app.slack.responses_for("refused"))
    time.sleep(0.5)
    assert len(app.slack.calls_to("views.open")) == 1
    assert len(app.slack.responses_for("refused")) == 1


def test_the_same_command_typed_twice_creates_two_requests(any_app: RunningApp) -> None:
    app = any_app
    for key in ("first", "second"):
        assert app.request(f"{QUAL} {WORKERS[0]}", response_key=key).status == 200
    settle(app, 2)
    assert len(app.grant_qual.store.requests()) == 2


def test_a_form_submission_replayed_and_retried_creates_one_request(any_app: RunningApp) -> None:
    app = any_app
    metadata = json.dumps({"response_url": app.slack.response_url("form")})
    payload = app.sender.view_submission_payload(
        REQUESTER, modal_values(QUAL, f"{WORKERS[0]}\n{WORKERS[1]}"), private_metadata=metadata
    )
    body, headers = app.sender.prepare({"payload": json.dumps(payload)})
    assert app.sender.send(body, headers).body == ""
    assert app.sender.send(body, headers).body == ""
    assert app.sender.post({"payload": json.dumps(payload)}, retry_num=1).body == ""
    settle(app, 1)
    assert len(app.grant_qual.store.requests()) == 1 and len(app.slack.responses_for("form")) == 1


def test_a_form_refused_inline_then_corrected_is_taken(any_app: RunningApp) -> None:
    """Slack keeps the modal open after errors; its resubmission is a new interaction with a new trigger_id."""
    app = any_app
    metadata = json.dumps({"response_url": app.slack.response_url("corrected")})
    wrong = app.sender.submit_view(REQUESTER, modal_values(QUAL, "not-a-worker"), private_metadata=metadata)
    assert wrong.json()["response_action"] == "errors"
    view_id = "V0STAYSOPEN"
    again = app.sender.submit_view(REQUESTER, modal_values(QUAL, "still wrong"), view_id=view_id)
    assert again.json()["response_action"] == "errors"
    fixed = app.sender.submit_view(
        REQUESTER, modal_values(QUAL, WORKERS[0]), private_metadata=metadata, view_id=view_id
    )
    assert fixed.status == 200 and fixed.body == ""
    settle(app, 1)
    assert len(app.grant_qual.store.requests()) == 1


def test_a_copy_at_another_replica_or_after_a_restart_does_nothing(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, any_database_url: str
) -> None:
    first = start_app(fake_slack, fake_mturk, any_database_url)
    second = start_app(fake_slack, fake_mturk, any_database_url)
    body, headers = first.sender.prepare(first.sender.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}"))
    try:
        assert first.sender.send(body, headers).status == 200
        assert second.sender.send(body, headers).status == 200
        settle(first, 1)
    finally:
        first.stop()
        second.stop()
    restarted = start_app(fake_slack, fake_mturk, any_database_url)
    try:
        assert restarted.sender.send(body, headers).status == 200
        time.sleep(0.5)
        assert len(restarted.grant_qual.store.requests()) == 1 and len(approval_posts(restarted)) == 1
    finally:
        restarted.stop()


# ---------------------------------------------------------------------------------------------- the store


@pytest.fixture
def store(store_on_any_database: GrantStore) -> GrantStore:
    return store_on_any_database


def test_a_delivery_key_is_taken_once_even_by_racing_threads(store: GrantStore) -> None:
    results: list[bool] = []
    racers = [
        threading.Thread(target=lambda: results.append(store.take_delivery("T-race", "command"))) for _ in range(8)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.take_delivery("T-other", "view_submission") is True


def test_delivery_keys_are_forgotten_after_a_day(store: GrantStore) -> None:
    old = now() - DELIVERY_KEYS_KEPT - timedelta(minutes=1)
    recent = now() - DELIVERY_KEYS_KEPT + timedelta(minutes=10)
    with store.engine.begin() as conn:
        conn.execute(insert(deliveries_taken).values(key="T-old", kind="command", received_at=old))
        conn.execute(insert(deliveries_taken).values(key="T-recent", kind="command", received_at=recent))
    assert store.take_delivery("T-new", "command") is True
    with store.engine.connect() as conn:
        kept = set(conn.execute(select(deliveries_taken.c.key)).scalars())
    assert kept == {"T-recent", "T-new"}
    assert store.take_delivery("T-recent", "command") is False


def test_delivery_keys_are_the_trigger_id_or_a_digest_the_same_in_every_copy() -> None:
    command = {"command": "/grant-qual", "text": "x", "trigger_id": "1234.5678.abc", "response_url": "https://a/1"}
    assert (delivery_kind(command), delivery_key(command)) == ("command", "1234.5678.abc")
    submission = {"type": "view_submission", "view": {"id": "V1", "state": {"values": {}}}}
    assert delivery_kind(submission) == "view_submission"
    assert delivery_key(submission) == delivery_key(json.loads(json.dumps(submission)))
    assert delivery_key(submission).startswith("sha256:") and len(delivery_key(submission)) <= 128
    other = {**command, "trigger_id": "", "response_url": "https://a/2"}
    assert delivery_key(other) != delivery_key({**other, "response_url": "https://a/3"})
    assert delivery_key({**command, "trigger_id": "t" * 500}).startswith("sha256:")
    assert delivery_kind({"type": "block_actions", "trigger_id": "1"}) is None  # clicks are compare-and-swap
