"""Pending requests do not hang forever: the requester cancels, approvers are reminded once, requests expire.

End to end through signed Slack requests and the fakes, with a fake clock driving the sweepers (no sleeping
hours), two replicas on one database (a SQLite file, and PostgreSQL with TEST_DATABASE_URL); unit tests of the
store's transitions, the command's parsing and the settings beside them.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from bot.config import SettingsError, load_settings
from bot.pending import PendingSweeper, SweepResult
from bot.requests import (
    CancelWanted,
    DeliveryState,
    EventKind,
    GrantSpec,
    InvalidRequest,
    RequestState,
    WorkerTarget,
    parse_command_text,
)
from bot.slack.lookup_blocks import STATE_LABELS
from bot.store import GrantStore, create_database_engine, now
from tests.block_kit import assert_valid_block_kit
from tests.conftest import APPROVER, OUTSIDER, QUAL, REQUESTER, WORKERS, RunningApp, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text

T = TypeVar("T")
TTL = timedelta(hours=72)
REMIND_AFTER = timedelta(hours=24)


class FakeClock:
    """The time the sweepers see; the tests move it."""

    def __init__(self) -> None:
        self.moment = now()

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, clock: FakeClock) -> Iterator[RunningApp]:
    running = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    yield running
    running.stop()


@pytest.fixture
def replicas(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, any_database_url: str, clock: FakeClock
) -> Iterator[tuple[RunningApp, RunningApp]]:
    first = start_app(fake_slack, fake_mturk, any_database_url, clock=clock)
    second = start_app(fake_slack, fake_mturk, any_database_url, clock=clock)
    yield first, second
    first.stop()
    second.stop()


def post_request(app: RunningApp, user: str = REQUESTER) -> dict[str, Any]:
    app.request(f"{QUAL} {' '.join(WORKERS)} value=7", user=user)
    return app.approval_message()


def ephemeral(app: RunningApp, key: str) -> str:
    return str(app.slack.wait_for(lambda: app.slack.responses_for(key))[0]["text"])


def message_showing(app: RunningApp, words: str) -> dict[str, Any]:
    return app.slack.wait_for(lambda: (m := app.approval_message()) and words in message_text(m) and m)


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


def run_together(*calls: Callable[[], T]) -> list[T]:
    """Every call at the same moment, each in its own thread, as replicas whose loops line up would."""
    start = threading.Barrier(len(calls))
    results: dict[int, T] = {}

    def run(i: int) -> None:
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(calls)
    return [results[i] for i in range(len(calls))]


def sweep_together(*sweepers: PendingSweeper) -> list[SweepResult]:
    return run_together(*(sweeper.sweep for sweeper in sweepers))


def won_by_anyone(won: list[list[int]]) -> list[int]:
    return sorted(itertools.chain.from_iterable(won))


# Cancelling, through Slack.


def test_the_request_message_offers_cancel_to_its_requester(app: RunningApp) -> None:
    message = post_request(app)
    assert buttons(message) == ["approve_request", "reject_request", "cancel_request"]
    assert_valid_block_kit(app.slack)


def test_requester_cancels_with_the_button_and_a_later_approve_does_nothing(app: RunningApp) -> None:
    post_request(app)
    app.click(REQUESTER, "cancel_request", response_key="cancel")
    message = message_showing(app, "Cancelled by")
    assert buttons(message) == []
    assert f"Cancelled by <@{REQUESTER}>" in message_text(message)
    (reply,) = app.slack.wait_for(lambda: app.posts("cancelled"))
    assert "Cancelled by" in reply["text"] and "Nothing was granted" in reply["text"]
    request = app.grant_qual.store.get(1)
    assert request is not None and request.state is RequestState.CANCELLED and request.decided_by == REQUESTER

    app.click(APPROVER, "approve_request", response_key="late")  # an approver's stale view of the message
    assert ephemeral(app, "late") == f"Request #1 was cancelled by <@{REQUESTER}>; nothing changed."
    app.click(APPROVER, "reject_request", response_key="late-reject")
    assert "was cancelled" in ephemeral(app, "late-reject")
    assert app.grant_qual.store.get(1).state is RequestState.CANCELLED  # type: ignore[union-attr]
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
    assert app.slack.responses_for("cancel") == []  # the message itself says it; no ephemeral needed
    assert app.slack.dms_to(REQUESTER) == []  # they cancelled it themselves
    assert [e.kind for e in app.grant_qual.store.events(1)] == [EventKind.SUBMITTED, EventKind.CANCELLED]
    assert_valid_block_kit(app.slack)


@pytest.mark.parametrize("text", ["cancel 1", "cancel #1", "Cancel  #1"])
def test_requester_cancels_with_the_command(app: RunningApp, text: str) -> None:
    post_request(app)
    app.request(text, response_key="cmd")
    assert ephemeral(app, "cmd").startswith(":no_entry_sign: Request #1 is cancelled")
    message = message_showing(app, "Cancelled by")
    assert buttons(message) == []
    app.slack.wait_for(lambda: app.posts("cancelled"))

    app.request("cancel 1", response_key="again")
    assert ephemeral(app, "again") == f"Request #1 was cancelled by <@{REQUESTER}>; nothing changed."
    app.click(APPROVER, "approve_request", response_key="late")
    assert "was cancelled" in ephemeral(app, "late")
    assert len(app.posts("cancelled")) == 1
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
    assert_valid_block_kit(app.slack)


def test_nobody_else_may_cancel(app: RunningApp) -> None:
    message = post_request(app)
    app.click(APPROVER, "cancel_request", response_key="approver-click")
    assert "Only the person who made request #1 can cancel it" in ephemeral(app, "approver-click")
    app.request("cancel 1", user=APPROVER, response_key="approver-cmd")  # APPROVER may request, but not this one
    assert "Only the person who made request #1 can cancel it" in ephemeral(app, "approver-cmd")
    app.request("cancel 1", user=OUTSIDER, response_key="outsider-cmd")
    assert "Only requesters can request qualification grants" in ephemeral(app, "outsider-cmd")
    app.click(OUTSIDER, "cancel_request", response_key="outsider-click")
    assert "Only the person who made request #1" in ephemeral(app, "outsider-click")
    # The requester's own click counts only on the request's message.
    app.sender.click(REQUESTER, "cancel_request", "1", message_ts="9.9", response_key="elsewhere")
    assert "not on request #1's message" in ephemeral(app, "elsewhere")
    app.request("cancel 99", response_key="missing")
    assert "Request #99 does not exist" in ephemeral(app, "missing")
    app.request("cancel twelve", response_key="typo")
    assert "cancel takes one request number" in ephemeral(app, "typo")

    assert app.grant_qual.store.get(1).state is RequestState.PENDING  # type: ignore[union-attr]
    assert app.slack.calls_to("chat.update") == []
    assert buttons(app.approval_message()) == buttons(message)
    app.click(APPROVER, "approve_request")  # still pending, so still decidable
    assert app.wait_final().state is RequestState.DONE


def test_a_decided_request_can_no_longer_be_cancelled(app: RunningApp) -> None:
    post_request(app)
    app.reject(APPROVER)
    app.wait_final()
    app.request("cancel 1", response_key="late")
    assert ephemeral(app, "late") == f"Request #1 is already rejected by <@{APPROVER}>; it can no longer be cancelled."
    assert app.grant_qual.store.get(1).state is RequestState.REJECTED  # type: ignore[union-attr]


def answer_text(app: RunningApp, key: str) -> str:
    return message_text(app.slack.wait_for(lambda: app.slack.responses_for(key))[0])


def test_look_ups_tell_a_cancelled_request(app: RunningApp) -> None:
    post_request(app)
    app.request("cancel 1")
    app.slack.wait_for(lambda: app.posts("cancelled"))
    app.request("status 1", user=APPROVER, response_key="status")
    status = answer_text(app, "status")
    assert "cancelled by its requester" in status and f"Cancelled by* <@{REQUESTER}>" in status
    app.request(f"history {WORKERS[0]}", response_key="history")
    assert "not granted: cancelled by its requester" in answer_text(app, "history")
    app.request("mine", response_key="mine")
    assert "cancelled by its requester" in answer_text(app, "mine")
    assert_valid_block_kit(app.slack)


def test_look_ups_tell_an_expired_request(app: RunningApp, clock: FakeClock) -> None:
    post_request(app)
    clock.moment = app.grant_qual.store.get(1).created_at + TTL  # type: ignore[union-attr]
    assert app.grant_qual.sweeper.sweep().expired == [1]
    app.request("status #1", response_key="status")
    status = answer_text(app, "status")
    assert "expired: nobody decided in time" in status and "*Expired*" in status and "Approved" not in status
    app.request(f"history {WORKERS[0]}", response_key="history")
    assert "not granted: expired" in answer_text(app, "history")
    assert_valid_block_kit(app.slack)


def test_every_state_has_words_in_the_look_ups() -> None:
    assert set(STATE_LABELS) == set(RequestState)


def test_help_lists_cancel(app: RunningApp) -> None:
    app.request("help", response_key="help")
    assert "/grant-qual cancel &lt;REQUEST_NUMBER&gt;" in ephemeral(app, "help")


# Reminders and expiry, with two replicas sweeping at the same moments.


def test_reminded_once_then_expired_once_across_two_replicas(
    replicas: tuple[RunningApp, RunningApp], clock: FakeClock
) -> None:
    first, second = replicas
    sweepers = (first.grant_qual.sweeper, second.grant_qual.sweeper)
    post_request(first)
    clock.moment = first.grant_qual.store.get(1).created_at  # type: ignore[union-attr]

    clock.advance(REMIND_AFTER - timedelta(seconds=1))
    assert [r.reminded for r in sweep_together(*sweepers)] == [[], []]
    clock.advance(timedelta(seconds=1))
    assert won_by_anyone([r.reminded for r in sweep_together(*sweepers)]) == [1]
    (reminder,) = first.slack.wait_for(lambda: first.posts("reminded"))
    assert "still waiting for an approver (24 h)" in reminder["text"]
    (call,) = [c for c in first.slack.calls_to("chat.postMessage") if "still waiting" in str(c.args.get("text"))]
    assert call.args.get("reply_broadcast") is True  # shown in the channel too, mentioning nobody
    assert "<@" not in reminder["text"]
    clock.advance(timedelta(hours=1))
    assert [r.reminded for r in sweep_together(*sweepers)] == [[], []]

    clock.advance(TTL - REMIND_AFTER - timedelta(hours=1) - timedelta(seconds=1))
    assert [r.expired for r in sweep_together(*sweepers)] == [[], []]
    clock.advance(timedelta(seconds=1))
    assert won_by_anyone([r.expired for r in sweep_together(*sweepers)]) == [1]

    message = message_showing(first, "Expired")
    assert buttons(message) == []
    assert "no decision within 72 h" in message_text(message)
    (reply,) = first.slack.wait_for(lambda: first.posts("expired"))
    assert "no approver decided within 72 h" in reply["text"]
    (dm,) = first.slack.wait_for(lambda: first.slack.dms_to(REQUESTER))
    assert "Your request #1" in dm["text"] and "expired" in dm["text"] and "See the request" in dm["text"]

    second.click(APPROVER, "approve_request", response_key="late")
    assert ephemeral(second, "late").startswith("Request #1 expired")
    first.request("cancel 1", response_key="cancel-late")
    assert ephemeral(first, "cancel-late").startswith("Request #1 expired")
    clock.advance(timedelta(days=30))
    assert [r.expired + r.reminded for r in sweep_together(*sweepers)] == [[], []]

    first.slack.wait_for(lambda: all(e.delivery_state is DeliveryState.DELIVERED for e in _events(first)))
    assert [e.kind for e in _events(first)] == [EventKind.SUBMITTED, EventKind.REMINDED, EventKind.EXPIRED]
    assert len(first.posts("reminded")) == 1 and len(first.posts("expired")) == 1
    assert len(first.slack.dms_to(REQUESTER)) == 1
    assert first.mturk.calls("AssociateQualificationWithWorker") == []
    assert_valid_block_kit(first.slack)


def test_a_restarted_app_expires_at_once_what_came_due_while_it_was_down(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, clock: FakeClock
) -> None:
    before = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    post_request(before)
    created = before.grant_qual.store.get(1).created_at  # type: ignore[union-attr]
    before.stop()
    clock.moment = created + TTL + timedelta(hours=5)  # down for three days and more; nobody calls sweep() here
    after = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    try:
        message = message_showing(after, "Expired")
        assert buttons(message) == [] and "no decision within 77 h" in message_text(message)
        after.slack.wait_for(lambda: after.slack.dms_to(REQUESTER))
        assert after.posts("reminded") == []  # past both deadlines: expired, not reminded first
    finally:
        after.stop()


def _events(app: RunningApp) -> list[Any]:
    return app.grant_qual.store.events(1)


def test_a_request_decided_in_time_neither_expires_nor_is_reminded(app: RunningApp, clock: FakeClock) -> None:
    post_request(app)
    app.click(APPROVER, "approve_request")
    app.wait_final()
    clock.advance(timedelta(days=10))
    assert app.grant_qual.sweeper.sweep() == SweepResult([], [])
    assert app.posts("reminded") == [] and app.posts("expired") == []


def test_a_reminder_left_undelivered_is_not_posted_once_the_request_is_decided(
    app: RunningApp, clock: FakeClock
) -> None:
    post_request(app)
    app.grant_qual.delivery.stop()  # Slack unreachable, as far as this replica's outbox goes
    clock.moment = app.grant_qual.store.get(1).created_at + REMIND_AFTER  # type: ignore[union-attr]
    assert app.grant_qual.sweeper.sweep().reminded == [1]
    assert app.grant_qual.service.store.decide(1, user_id=APPROVER, approve=False)
    reminded = next(e for e in _events(app) if e.kind is EventKind.REMINDED)
    app.grant_qual.messenger.tell(reminded)
    assert app.posts("reminded") == []


# The store's transitions, on SQLite and PostgreSQL, with two stores (replicas) on one database.


SPEC = GrantSpec(QUAL, (WorkerTarget(WORKERS[0], 3),), True, "")


@pytest.fixture
def two_stores(any_database_url: str) -> Iterator[tuple[GrantStore, GrantStore]]:
    first = GrantStore(create_database_engine(any_database_url))
    first.upgrade_schema()
    second = GrantStore(create_database_engine(any_database_url))
    yield first, second
    first.engine.dispose()
    second.engine.dispose()


def create(store: GrantStore, requester: str = REQUESTER) -> int:
    return store.create_request(SPEC, requester_id=requester, mturk_env="sandbox", qualification_name="Q").id


def kinds(store: GrantStore, request_id: int) -> list[EventKind]:
    return [e.kind for e in store.events(request_id)]


def test_store_cancel_only_by_the_requester_and_only_while_pending(two_stores: tuple[GrantStore, GrantStore]) -> None:
    store, _ = two_stores
    first, second = create(store), create(store)
    assert not store.cancel(first, user_id=APPROVER)
    assert store.cancel(first, user_id=REQUESTER)
    assert not store.cancel(first, user_id=REQUESTER)
    assert not store.decide(first, user_id=APPROVER, approve=True)
    cancelled = store.get(first)
    assert cancelled is not None and cancelled.state is RequestState.CANCELLED and cancelled.state.is_final
    assert cancelled.decided_by == REQUESTER and cancelled.finished_at is not None
    assert kinds(store, first) == [EventKind.SUBMITTED, EventKind.CANCELLED]
    assert store.decide(second, user_id=APPROVER, approve=False)
    assert not store.cancel(second, user_id=REQUESTER)
    assert kinds(store, second) == [EventKind.SUBMITTED, EventKind.REJECTED]


def test_store_expires_at_the_ttl_and_not_before(two_stores: tuple[GrantStore, GrantStore]) -> None:
    store, _ = two_stores
    request_id = create(store)
    created = store.get(request_id).created_at  # type: ignore[union-attr]
    assert store.expire_pending(moment=created + TTL - timedelta(microseconds=1), ttl=TTL) == []
    assert store.expire_pending(moment=created + TTL, ttl=TTL) == [request_id]
    assert store.expire_pending(moment=created + 2 * TTL, ttl=TTL) == []
    expired = store.get(request_id)
    assert expired is not None and expired.state is RequestState.EXPIRED and expired.finished_at == created + TTL
    assert expired.decided_by is None
    assert not store.decide(request_id, user_id=APPROVER, approve=True)
    assert not store.cancel(request_id, user_id=REQUESTER)
    assert kinds(store, request_id) == [EventKind.SUBMITTED, EventKind.EXPIRED]


def test_store_reminds_once_and_never_after_a_decision(two_stores: tuple[GrantStore, GrantStore]) -> None:
    store, _ = two_stores
    waiting, decided = create(store), create(store)
    assert store.decide(decided, user_id=APPROVER, approve=False)
    created = store.get(waiting).created_at  # type: ignore[union-attr]
    later = created + REMIND_AFTER + timedelta(seconds=1)  # both requests were made within that second
    assert store.remind_pending(moment=later - timedelta(hours=1), after=REMIND_AFTER) == []
    assert store.remind_pending(moment=later, after=REMIND_AFTER) == [waiting]
    assert store.remind_pending(moment=later + timedelta(hours=1), after=REMIND_AFTER) == []
    assert store.get(waiting).reminded_at == later  # type: ignore[union-attr]
    assert kinds(store, waiting) == [EventKind.SUBMITTED, EventKind.REMINDED]
    assert kinds(store, decided) == [EventKind.SUBMITTED, EventKind.REJECTED]


def test_a_request_past_both_deadlines_expires_without_a_reminder(two_stores: tuple[GrantStore, GrantStore]) -> None:
    store, _ = two_stores
    request_id = create(store)
    clock = FakeClock()
    clock.advance(TTL + timedelta(hours=1))  # no process ran for three days
    sweeper = PendingSweeper(store, ttl=TTL, remind_after=REMIND_AFTER, clock=clock)
    assert sweeper.sweep() == SweepResult([request_id], [])
    assert kinds(store, request_id) == [EventKind.SUBMITTED, EventKind.EXPIRED]


def test_no_reminder_when_turned_off(two_stores: tuple[GrantStore, GrantStore]) -> None:
    store, _ = two_stores
    request_id = create(store)
    clock = FakeClock()
    clock.advance(TTL - timedelta(hours=1))
    assert PendingSweeper(store, ttl=TTL, remind_after=None, clock=clock).sweep() == SweepResult([], [])
    assert kinds(store, request_id) == [EventKind.SUBMITTED]


@pytest.mark.parametrize(
    "race",
    [
        lambda store, moment: store.expire_pending(moment=moment, ttl=TTL),
        lambda store, moment: store.remind_pending(moment=moment, after=REMIND_AFTER),
    ],
    ids=["expire", "remind"],
)
def test_two_replicas_sweeping_at_once_act_on_each_request_once(
    two_stores: tuple[GrantStore, GrantStore], race: Callable[[GrantStore, datetime], list[int]]
) -> None:
    first, second = two_stores
    ids = [create(first) for _ in range(15)]
    moment = now() + TTL + timedelta(minutes=1)
    won = run_together(*(functools.partial(race, store, moment) for store in (first, second, first, second)))
    assert won_by_anyone(won) == ids  # each request exactly once, whoever won it
    for request_id in ids:
        assert len(first.events(request_id)) == 2


def test_store_cancel_races_with_expiry_and_one_wins(two_stores: tuple[GrantStore, GrantStore]) -> None:
    first, second = two_stores
    for _ in range(10):
        request_id = create(first)
        created = first.get(request_id).created_at  # type: ignore[union-attr]
        cancelled, expired = run_together(
            functools.partial(first.cancel, request_id, user_id=REQUESTER),
            functools.partial(second.expire_pending, moment=created + TTL, ttl=TTL),
        )
        assert [cancelled, expired == [request_id]].count(True) == 1
        assert len(first.events(request_id)) == 2


# The command's grammar and the settings.


@pytest.mark.parametrize(
    ("text", "request_id"),
    [("cancel 12", 12), ("cancel #12", 12), ("Cancel 7", 7), ("cancel\n#3", 3), ("  cancel   40 ", 40)],
)
def test_cancel_command_parses(text: str, request_id: int) -> None:
    assert parse_command_text(text, max_workers=10) == CancelWanted(request_id)


@pytest.mark.parametrize("text", ["cancel", "cancel #", "cancel twelve", "cancel 1 2", "cancel ²", "cancel -3"])
def test_cancel_command_needs_one_request_number(text: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_command_text(text, max_workers=10)
    assert "cancel takes one request number" in str(error.value)


def test_cancel_in_capitals_is_a_qualification_type_id() -> None:
    parsed = parse_command_text(f"CANCEL {WORKERS[0]}", max_workers=10)
    assert isinstance(parsed, GrantSpec) and parsed.qualification_type_id == "CANCEL"


BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "GRANT_REQUESTERS": "U01",
    "GRANT_APPROVERS": "U03",
    "APPROVAL_CHANNEL": "C01",
}


def test_pending_settings_default_and_validate() -> None:
    settings = load_settings(BASE)
    assert (settings.request_ttl_hours, settings.remind_after_hours) == (72, 24)
    settings = load_settings({**BASE, "REQUEST_TTL_HOURS": "12", "REMIND_AFTER_HOURS": "0"})
    assert (settings.request_ttl_hours, settings.remind_after_hours) == (12, 0)
    with pytest.raises(SettingsError, match=r"REMIND_AFTER_HOURS \(24, the default\) must be less than"):
        load_settings({**BASE, "REQUEST_TTL_HOURS": "24"})
    with pytest.raises(SettingsError, match=r"REMIND_AFTER_HOURS \(80\) must be less than REQUEST_TTL_HOURS \(72\)"):
        load_settings({**BASE, "REMIND_AFTER_HOURS": "80"})
    for bad in ("0", "-1", "three", "100000"):
        with pytest.raises(SettingsError, match="REQUEST_TTL_HOURS"):
            load_settings({**BASE, "REQUEST_TTL_HOURS": bad})
