"""Grants that expire, end to end: `expires=` (and the form's "Expires after") on a grant, the date in the approval
message and the summary, and at expiry the workers the grant gave a score revoked once, with no new approval, by
whichever replica sees it due (or after a restart), leaving alone a worker re-granted since; the requester told a
day before and after; Extend and Revoke now on the request message. A fake clock drives the sweeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.requests import (
    EventKind,
    Field,
    GrantSpec,
    InvalidRequest,
    Operation,
    RequestState,
    WorkerTarget,
    parse_command_text,
    parse_expiry,
    with_expiry,
)
from bot.slack import expiry_blocks
from tests.block_kit import assert_valid_block_kit, validate_blocks, validate_view
from tests.conftest import APPROVER, CHANNEL, OUTSIDER, QUAL, REQUESTER, WORKERS, RunningApp, posted_for, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text, modal_values
from tests.test_pending_lifecycle import FakeClock

MOMENT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEPT, REGRANTED, ALSO = WORKERS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, clock: FakeClock) -> Iterator[RunningApp]:
    running = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    yield running
    running.stop()


def grant_expiring(app: RunningApp, expires: str = "30d", request_id: int = 1) -> dict[str, Any]:
    """Request #`request_id` grants the three workers 80, expiring; approved and done. Its approval message."""
    app.request(f"{QUAL} {' '.join(WORKERS)} value=80 expires={expires}")
    message = app.approval_message(request_id)
    app.click(APPROVER, "approve_request", request_id)
    assert app.wait_final(request_id).state is RequestState.DONE
    return message


def expires_at(app: RunningApp, request_id: int = 1) -> datetime:
    request = app.grant_qual.store.get(request_id)
    assert request is not None and request.expires_at is not None
    return request.expires_at


def expiry_summary(app: RunningApp, expiry_id: int, original: int = 1) -> dict[str, Any]:
    """The expiry request's summary, in the original's thread."""

    def posted() -> dict[str, Any] | None:
        for message in app.thread(original):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if posted_for(message) == "finished" and payload.get("request_id") == expiry_id:
                return message
        return None

    return app.slack.wait_for(posted, timeout=20)


def dm_saying(app: RunningApp, words: str) -> list[dict[str, Any]]:
    return app.slack.wait_for(lambda: [m for m in app.slack.dms_to(REQUESTER) if words in m["text"]])


def message_buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


# Parsing: units, dates, bad values, only grants.


def test_expires_takes_hours_days_weeks_or_a_date() -> None:
    assert parse_expiry("30d", MOMENT) == timedelta(days=30)
    assert parse_expiry("12h", MOMENT) == timedelta(hours=12)
    assert parse_expiry("8W", MOMENT) == timedelta(weeks=8)
    assert parse_expiry("2027-03-01", MOMENT) == datetime(2027, 3, 1, tzinfo=UTC)
    assert parse_expiry("", MOMENT) is None
    for bad, says in (
        ("soon", "is not an expiry"),
        ("0d", "from 1 hour up to 5 years"),
        ("2000w", "from 1 hour up to 5 years"),
        ("2026-11-01", "not in the future"),
        ("2035-01-01", "more than 5 years"),
        ("2027-02-30", "is not an expiry"),
        ("30 days", "is not an expiry"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            parse_expiry(bad, MOMENT)
        assert says in refused.value.errors[Field.EXPIRES], bad
    spec = parse_command_text(f"{QUAL} {KEPT} value=5 expires=30d", max_workers=10)
    assert isinstance(spec, GrantSpec) and spec.expires_after == timedelta(days=30) and spec.expires_at is None
    revoke = GrantSpec(QUAL, (WorkerTarget(KEPT, None, Operation.REVOKE),))
    with pytest.raises(InvalidRequest) as refused:
        with_expiry(revoke, "30d", MOMENT)
    assert "Only a grant can expire" in refused.value.errors[Field.EXPIRES]


def test_a_bad_expiry_is_answered_and_nothing_is_stored(app: RunningApp) -> None:
    app.request(f"{QUAL} {KEPT} expires=someday", response_key="bad")
    answer = app.slack.wait_for(lambda: app.slack.responses_for("bad"))[0]["text"]
    assert "`someday` is not an expiry" in answer
    app.request(f"revoke {QUAL} {KEPT} expires=30d", response_key="revoke")
    assert "Unknown option `expires=`" in app.slack.wait_for(lambda: app.slack.responses_for("revoke"))[0]["text"]
    values = modal_values(QUAL, workers=KEPT)
    values["expires"] = {"value": {"type": "plain_text_input", "value": "2001-01-01"}}
    answer = app.sender.submit_view(REQUESTER, values).json()
    assert answer["response_action"] == "errors" and "not in the future" in answer["errors"]["expires"]
    values["expires"]["value"]["value"] = "30d"
    values["operation"] = {"value": {"type": "radio_buttons", "selected_option": {"value": "revoke"}}}
    answer = app.sender.submit_view(REQUESTER, values).json()
    assert "Only a grant can expire" in answer["errors"]["expires"]
    assert app.grant_qual.store.get(1) is None


def test_the_form_sets_an_expiry_date(app: RunningApp) -> None:
    values = modal_values(QUAL, workers=KEPT)
    values["expires"] = {"value": {"type": "plain_text_input", "value": "2027-03-01"}}
    assert app.sender.submit_view(REQUESTER, values).body == ""
    text = message_text(app.approval_message())
    assert "*Expires* <!date^1803859200^" in text  # 2027-03-01 00:00 UTC
    assert app.grant_qual.store.get(1).expires_at == datetime(2027, 3, 1, tzinfo=UTC)  # type: ignore[union-attr]


# At expiry.


def test_at_expiry_what_it_granted_is_revoked_once_and_a_regranted_worker_is_left_alone(
    app: RunningApp, clock: FakeClock
) -> None:
    message = grant_expiring(app)
    assert "*Expires* 30 days after it is granted" in message_text(message)
    finished = app.grant_qual.store.get(1)
    assert finished is not None and finished.expires_at == finished.finished_at + timedelta(days=30)  # type: ignore[operator]
    summary = message_text(app.summary())
    assert f"Expires <!date^{int(finished.expires_at.timestamp())}^" in summary  # type: ignore[union-attr]
    updated = app.slack.wait_for(lambda: (m := app.approval_message()) and "extend_expiry" in message_buttons(m) and m)
    assert message_buttons(updated)[-2:] == ["extend_expiry", "revoke_now"]
    # Request #2 re-grants one of them another score meanwhile.
    app.request(f"{QUAL} {REGRANTED} value=90")
    app.approval_message(2)
    app.click(APPROVER, "approve_request", 2)
    assert app.wait_final(2).state is RequestState.DONE

    clock.moment = expires_at(app) - timedelta(seconds=1)
    assert app.grant_qual.expiry.sweep().expired == []  # type: ignore[union-attr]
    clock.moment = expires_at(app)
    assert app.grant_qual.expiry.sweep().expired == [1]  # type: ignore[union-attr]
    text = message_text(expiry_summary(app, 3))
    assert "Grant of request #1 expired: revoked" in text and "from all 2 worker(s)" in text
    assert "1 re-granted since by another request (or no longer holding it): left alone" in text
    assert "*Left alone*" in text and f"`{REGRANTED}`" in text.split("*Left alone*")[1]
    assert app.mturk.revoke_counts() == {KEPT: 1, ALSO: 1}
    assert app.mturk.holds(QUAL, REGRANTED) == 90
    expiry = app.grant_qual.store.get(3)
    assert expiry is not None and expiry.expiry_of == 1 and expiry.decided_by is None
    assert expiry.state is RequestState.DONE and app.grant_qual.store.get(1).expiry_request_id == 3  # type: ignore[union-attr]
    assert next(e.kind for e in app.grant_qual.store.events(3)) is EventKind.EXPIRY_STARTED
    started = app.slack.wait_for(lambda: [m for m in app.thread(1) if "as request #3" in m["text"]])
    assert "The grant expired" in started[0]["text"] and "approval covered the expiry" in started[0]["text"]
    (dm,) = dm_saying(app, "expired: revoked")
    assert "Your grant #1" in dm["text"] and "expired: revoked 2, left alone 1" in dm["text"]
    app.slack.wait_for(lambda: "*Grant expired*: revoked as request #3" in message_text(app.approval_message()))
    assert "extend_expiry" not in message_buttons(app.approval_message())

    clock.advance(timedelta(days=1))
    assert app.grant_qual.expiry.sweep().expired == []  # type: ignore[union-attr]
    assert app.mturk.revoke_counts() == {KEPT: 1, ALSO: 1}
    assert len(app.grant_qual.store.requests()) == 3
    assert_valid_block_kit(app.slack)


def test_the_requester_is_told_a_day_before_once(app: RunningApp, clock: FakeClock) -> None:
    grant_expiring(app)
    expiry = app.grant_qual.expiry
    assert expiry is not None
    clock.moment = expires_at(app) - timedelta(hours=25)
    assert expiry.sweep().noticed == []
    clock.moment = expires_at(app) - timedelta(hours=23)
    assert expiry.sweep().noticed == [1]
    assert expiry.sweep().noticed == []
    (dm,) = dm_saying(app, "expires <!date^")
    assert "Your grant #1" in dm["text"] and "Extend" in dm["text"]
    assert app.mturk.revoke_counts() == {}


def test_extend_moves_the_expiry(app: RunningApp, clock: FakeClock) -> None:
    grant_expiring(app)
    app.slack.wait_for(lambda: "extend_expiry" in message_buttons(app.approval_message()))
    app.click(REQUESTER, "extend_expiry", response_key="requester")
    assert "Only approvers" in app.slack.wait_for(lambda: app.slack.responses_for("requester"))[0]["text"]
    assert app.slack.calls_to("views.open") == []
    app.click(APPROVER, "extend_expiry")
    opened = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))
    assert "Expires after" in str(opened[0])
    values = {"expires": {"value": {"type": "plain_text_input", "value": "tomorrow"}}}
    answer = app.sender.submit_view(
        APPROVER, values, callback_id=expiry_blocks.EXTEND_MODAL_CALLBACK, private_metadata="1"
    ).json()
    assert "is not an expiry" in answer["errors"]["expires"]
    old = expires_at(app)
    values["expires"]["value"]["value"] = "60d"
    response = app.sender.submit_view(
        APPROVER, values, callback_id=expiry_blocks.EXTEND_MODAL_CALLBACK, private_metadata="1"
    )
    assert response.body == ""
    assert expires_at(app) == clock.moment + timedelta(days=60)
    stamp = f"<!date^{int(expires_at(app).timestamp())}^"
    app.slack.wait_for(lambda: [m for m in app.thread(1) if "extended the grant" in m["text"] and stamp in m["text"]])
    app.slack.wait_for(lambda: stamp in message_text(app.approval_message()))
    clock.moment = old
    assert app.grant_qual.expiry.sweep().expired == []  # type: ignore[union-attr]
    clock.moment = expires_at(app)
    assert app.grant_qual.expiry.sweep().expired == [1]  # type: ignore[union-attr]
    expiry_summary(app, 2)
    assert app.mturk.revoke_counts() == {w: 1 for w in WORKERS}


def test_revoke_now_revokes_at_once_and_the_sweep_later_does_nothing(app: RunningApp, clock: FakeClock) -> None:
    grant_expiring(app)
    message = app.slack.wait_for(lambda: (m := app.approval_message()) and "revoke_now" in message_buttons(m) and m)
    button = next(
        e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "revoke_now"
    )
    assert button["confirm"]["title"]["text"] == "Revoke the grant now?"
    app.click(OUTSIDER, "revoke_now", response_key="outsider")
    refusal = app.slack.wait_for(lambda: app.slack.responses_for("outsider"))[0]["text"]
    # Who to ask and the clicker's own member ID, never the name of a setting.
    assert "Only approvers can extend or revoke a grant" in refusal and f"Your member ID is {OUTSIDER}" in refusal
    assert "GRANT_APPROVERS" not in refusal
    clicks = [threading.Thread(target=app.click, args=(APPROVER, "revoke_now")) for _ in range(3)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    text = message_text(expiry_summary(app, 2))
    assert f"revoked now by <@{APPROVER}>" in text
    assert app.mturk.revoke_counts() == {w: 1 for w in WORKERS}
    app.slack.wait_for(lambda: [m for m in app.thread(1) if f"Revoked now by <@{APPROVER}>" in m["text"]])
    clock.moment = expires_at(app) + timedelta(days=1)
    assert app.grant_qual.expiry.sweep().expired == []  # type: ignore[union-attr]
    assert len(app.grant_qual.store.requests()) == 2
    app.click(APPROVER, "revoke_now", response_key="again")
    assert "has expired already" in app.slack.wait_for(lambda: app.slack.responses_for("again"))[0]["text"]
    assert app.mturk.revoke_counts() == {w: 1 for w in WORKERS}


# Exactly once: replicas, restarts, environments.


def test_two_replicas_sweeping_at_once_revoke_each_worker_once(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, any_database_url: str, clock: FakeClock
) -> None:
    first = start_app(fake_slack, fake_mturk, any_database_url, clock=clock)
    second = start_app(fake_slack, fake_mturk, any_database_url, clock=clock)
    try:
        grant_expiring(first)
        clock.moment = expires_at(first) + timedelta(minutes=1)
        barrier = threading.Barrier(4)
        expired: list[int] = []

        def sweep(replica: RunningApp) -> None:
            barrier.wait()
            expired.extend(replica.grant_qual.expiry.sweep().expired)  # type: ignore[union-attr]

        sweeps = [threading.Thread(target=sweep, args=(r,)) for r in (first, second, first, second)]
        for thread in sweeps:
            thread.start()
        for thread in sweeps:
            thread.join()
        assert expired == [1]
        expiry_summary(first, 2)
        assert fake_mturk.revoke_counts() == {w: 1 for w in WORKERS}
        assert [r.id for r in first.grant_qual.store.requests()] == [1, 2]
    finally:
        first.stop()
        second.stop()


def test_an_expiry_due_while_no_process_ran_is_carried_out_by_the_next_start(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, clock: FakeClock
) -> None:
    before = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    grant_expiring(before)
    due = expires_at(before) + timedelta(hours=5)
    before.stop()
    clock.moment = due  # nobody calls sweep() here: the start does
    after = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    try:
        expiry_summary(after, 2)
        assert fake_mturk.revoke_counts() == {w: 1 for w in WORKERS}
    finally:
        after.stop()


def test_a_process_in_the_other_environment_leaves_an_expiry_alone(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, clock: FakeClock
) -> None:
    sandbox = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    grant_expiring(sandbox)
    clock.moment = expires_at(sandbox) + timedelta(minutes=1)
    sandbox.stop()
    production = start_app(fake_slack, fake_mturk, database_url, clock=clock, MTURK_ENV="production")
    try:
        assert production.grant_qual.expiry.sweep().expired == []  # type: ignore[union-attr]
        assert production.grant_qual.store.get(1).expiry_request_id is None  # type: ignore[union-attr]
        assert production.grant_qual.store.get(2) is None and fake_mturk.revoke_counts() == {}
    finally:
        production.stop()
    again = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    try:
        expiry_summary(again, 2)
        assert fake_mturk.revoke_counts() == {w: 1 for w in WORKERS}
    finally:
        again.stop()


def test_migration_0010_carries_a_database_forward(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from bot.store import MIGRATIONS, GrantStore, create_database_engine

    engine = create_database_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0008")
        conn.execute(
            text(
                "INSERT INTO grant_requests (id, requester_id, qualification_type_id, send_notification, reason, "
                "mturk_env, state, worker_count, created_at, round, revoke_count) VALUES "
                "(1, 'U0REQ', :qual, 1, 'old', 'sandbox', 'done', 1, '2026-01-01 00:00:00', 1, 0)"
            ),
            {"qual": QUAL},
        )
    store = GrantStore(engine)
    store.upgrade_schema()
    request = store.get(1)
    assert request is not None and request.reason == "old" and not request.expires
    assert request.expires_at is None and request.expiry_request_id is None and request.expiry_of is None
    assert store.due_expiry_ids(moment=datetime(2100, 1, 1, tzinfo=UTC), mturk_env="sandbox") == []
    engine.dispose()


def test_expiry_blocks_are_valid_block_kit() -> None:
    from bot.requests import GrantRequest

    request = GrantRequest(
        id=12,
        requester_id=REQUESTER,
        qualification_type_id=QUAL,
        qualification_name="x" * 300,
        send_notification=True,
        reason="",
        mturk_env="production",
        state=RequestState.DONE,
        worker_count=3,
        created_at=MOMENT,
        expires_at=MOMENT + timedelta(days=30),
        channel_id=CHANNEL,
    )
    validate_blocks([expiry_blocks._expiry_buttons(request)], where="buttons")
    validate_view(expiry_blocks.extend_modal(request), where="modal")
    assert expiry_blocks.duration_text(timedelta(weeks=8)) == "8 weeks"
    assert expiry_blocks.duration_text(timedelta(hours=12)) == "12 hours"
    assert expiry_blocks.duration_text(timedelta(days=1)) == "1 day"


def test_an_expiry_stored_by_a_process_that_died_is_resumed_like_any_approved_request(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, clock: FakeClock
) -> None:
    before = start_app(fake_slack, fake_mturk, database_url, clock=clock)
    grant_expiring(before)
    store = before.grant_qual.store
    # A replica stored the expiry request, claimed it and died before any call.
    assert store.start_expiry(1, moment=expires_at(before), actor_id=None, due=True) == 2
    assert store.claim(2, owner="died", lease=timedelta(seconds=-1), mturk_env="sandbox")
    assert store.start_expiry(1, moment=expires_at(before), actor_id=None, due=True) is None  # once
    assert before.grant_qual.executor.resume_unfinished() == [2]
    expiry_summary(before, 2)
    assert fake_mturk.revoke_counts() == {w: 1 for w in WORKERS}
    before.stop()
