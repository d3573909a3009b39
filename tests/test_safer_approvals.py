"""Safer approvals: Reject asks for a reason; APPROVALS_REQUIRED distinct approvers before anything runs.

Driven as Slack drives the app: signed clicks and form submissions to the real app, the fake Slack recording
what people see, the fake MTurk what was granted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from bot.config import MTurkEnvironment, SettingsError, load_settings
from bot.outcome_digest import OutcomeDigest
from bot.policy import AccessPolicy
from bot.requests import EventKind, GrantRequest, GrantSpec, RequestState, WorkerTarget
from bot.slack import blocks
from bot.store import MIGRATIONS, ApprovalResult, GrantStore, create_database_engine, now
from tests.block_kit import assert_valid_block_kit, validate_blocks, validate_view
from tests.conftest import (
    APPROVER,
    APPROVER_2,
    CHANNEL,
    OUTSIDER,
    QUAL,
    REQUESTER,
    WORKERS,
    RunningApp,
    reject_reason_values,
    start_app,
)
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text

APPROVER_3 = "U0APPROVE3"
THREE_APPROVERS = f"{APPROVER},{APPROVER_2},{APPROVER_3}"


@pytest.fixture
def two_needed(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> Iterator[RunningApp]:
    running = start_app(fake_slack, fake_mturk, database_url, APPROVALS_REQUIRED="2", GRANT_APPROVERS=THREE_APPROVERS)
    yield running
    running.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database_url(request: pytest.FixtureRequest, database_url: str) -> str:
    if request.param == "sqlite":
        return database_url
    return str(request.getfixturevalue("postgres_url"))


def post_request(app: RunningApp, user: str = REQUESTER, request_id: int = 1) -> dict[str, Any]:
    app.request(f"{QUAL} {' '.join(WORKERS)} value=7", user=user)
    return app.approval_message(request_id)


def ephemeral(app: RunningApp, key: str) -> str:
    return app.slack.wait_for(lambda: app.slack.responses_for(key))[0]["text"]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def message_showing(app: RunningApp, fragment: str, request_id: int = 1) -> dict[str, Any]:
    return app.slack.wait_for(
        lambda: (m := app.approval_message(request_id)) and fragment in message_text(m) and m, timeout=10
    )


def state(app: RunningApp, request_id: int = 1) -> RequestState:
    request = app.grant_qual.store.get(request_id)
    assert request is not None
    return request.state


def kinds(app: RunningApp, request_id: int = 1) -> list[EventKind]:
    return [e.kind for e in app.grant_qual.store.events(request_id)]


# ---------------------------------------------------------------------------------------------- two approvers


def test_first_of_two_approvals_updates_the_message_and_grants_nothing(two_needed: RunningApp) -> None:
    app = two_needed
    message = post_request(app)
    assert "Needs 2 approvers (the requester does not count)" in message_text(message)
    assert buttons(message)[0]["confirm"]["title"]["text"] == "Add your approval?"

    app.click(APPROVER, "approve_request", response_key="first")
    assert "Your approval of request #1 counts (1 of 2)" in ephemeral(app, "first")
    shown = message_showing(app, "Approved by")
    assert f"Approved by <@{APPROVER}> (1 of 2) — waiting for one more approver" in message_text(shown)
    assert [b["action_id"] for b in buttons(shown)] == ["approve_request", "reject_request", "cancel_request"]
    assert buttons(shown)[0]["confirm"]["title"]["text"] == "Grant now?"  # the next approval grants
    assert state(app) is RequestState.PENDING
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
    assert app.posts("approved") == [] and app.posts("approval_added") == []  # no thread post until it runs

    app.click(APPROVER, "approve_request", response_key="again")  # the same approver once more: counts once
    assert "You have already approved request #1 (1 of 2)" in ephemeral(app, "again")
    assert app.grant_qual.store.approvers(1) == (APPROVER,)
    assert kinds(app) == [EventKind.SUBMITTED, EventKind.APPROVAL_ADDED]

    app.click(APPROVER_2, "approve_request")
    request = app.wait_final()
    assert request.state is RequestState.DONE and request.decided_by == APPROVER_2
    assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}
    done = message_showing(app, "granted 3 of 3")
    assert f"Approved by <@{APPROVER}> and <@{APPROVER_2}>" in message_text(done)
    assert buttons(done) == []
    assert kinds(app)[:3] == [EventKind.SUBMITTED, EventKind.APPROVAL_ADDED, EventKind.APPROVED]
    assert len(app.slack.dms_to(REQUESTER)) == 1 or app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert_valid_block_kit(app.slack)


def test_the_requesters_own_approval_never_counts(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    app = start_app(
        fake_slack,
        fake_mturk,
        database_url,
        APPROVALS_REQUIRED="2",
        GRANT_APPROVERS=THREE_APPROVERS,
        ALLOW_SELF_APPROVAL="true",
    )
    try:
        post_request(app, user=APPROVER)  # an approver who asks
        app.click(APPROVER, "approve_request", response_key="own")
        assert "Your own approval does not count" in ephemeral(app, "own")
        assert app.grant_qual.store.approvers(1) == ()
        assert app.slack.calls_to("chat.update") == []
        app.click(APPROVER_2, "approve_request")
        message_showing(app, "(1 of 2)")
        assert state(app) is RequestState.PENDING
        app.click(APPROVER_3, "approve_request")
        assert app.wait_final().state is RequestState.DONE
        assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}
    finally:
        app.stop()


def test_a_reject_after_one_approval_ends_it(two_needed: RunningApp) -> None:
    app = two_needed
    post_request(app)
    app.click(APPROVER, "approve_request")
    message_showing(app, "(1 of 2)")
    assert app.reject(APPROVER_2, "Wrong qualification type.").status == 200
    request = app.wait_final()
    assert request.state is RequestState.REJECTED and request.decided_by == APPROVER_2
    shown = message_showing(app, "Rejected by")
    assert f"Rejected by <@{APPROVER_2}>" in message_text(shown) and buttons(shown) == []
    (reply,) = app.posts("rejected")
    assert "Reason: Wrong qualification type." in message_text(reply)
    app.click(APPROVER_3, "approve_request", response_key="late")
    assert ephemeral(app, "late") == f"Request #1 is already rejected by <@{APPROVER_2}>."
    assert app.mturk.calls("AssociateQualificationWithWorker") == []


def test_racing_approvals_approve_once_and_grant_once(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, any_database_url: str
) -> None:
    """Two replicas, three approvers double-clicking at once, two needed: one approval completes it, once."""
    replicas = [
        start_app(fake_slack, fake_mturk, any_database_url, APPROVALS_REQUIRED="2", GRANT_APPROVERS=THREE_APPROVERS)
        for _ in range(2)
    ]
    first = replicas[0]
    try:
        message = post_request(first)
        start = threading.Barrier(12)

        def click(replica: RunningApp, approver: str) -> None:
            start.wait()
            replica.sender.click(approver, "approve_request", "1", message=message, channel_id=CHANNEL)

        clicks = [
            threading.Thread(target=click, args=(replica, approver))
            for replica in replicas
            for approver in (APPROVER, APPROVER_2, APPROVER_3)
            for _ in range(2)
        ]
        for thread in clicks:
            thread.start()
        for thread in clicks:
            thread.join()
        request = first.wait_final(timeout=30)
        assert request.state is RequestState.DONE
        events = kinds(first)
        assert events.count(EventKind.APPROVED) == 1 and events.count(EventKind.APPROVAL_ADDED) == 1
        assert len(first.grant_qual.store.approvers(1)) == 2  # the third came too late to count
        assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}
        assert len(first.posts("finished")) == 1
    finally:
        for replica in replicas:
            replica.stop()


def test_racing_approvals_in_the_store_complete_exactly_once(any_database_url: str) -> None:
    """Per request, approvals by different approvers on two stores (as two replicas) at the same instant."""
    stores = [GrantStore(create_database_engine(any_database_url)) for _ in range(2)]
    stores[0].upgrade_schema()
    spec = GrantSpec(QUAL, (WorkerTarget(WORKERS[0], None),))
    for needed, approvers in ((2, (APPROVER, APPROVER_2)), (2, (APPROVER, APPROVER_2, APPROVER_3)), (3, ())):
        approvers = approvers or (APPROVER, APPROVER_2, APPROVER_3)
        for _ in range(8):
            request = stores[0].create_request(
                spec, requester_id=REQUESTER, mturk_env="sandbox", qualification_name="Q", approvals_required=needed
            )
            results: list[ApprovalResult] = []
            start = threading.Barrier(len(approvers))
            threads = [
                threading.Thread(target=approve_at_once, args=(start, stores[i % 2], request.id, approver, results))
                for i, approver in enumerate(approvers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert results.count(ApprovalResult.APPROVED) == 1, results
            assert results.count(ApprovalResult.ADDED) == needed - 1, results
            assert results.count(ApprovalResult.NOT_PENDING) == len(approvers) - needed, results
            events = [e.kind for e in stores[0].events(request.id)]
            assert events.count(EventKind.APPROVED) == 1
            assert events.count(EventKind.APPROVAL_ADDED) == needed - 1
            decided = stores[0].get(request.id)
            assert decided is not None and decided.state is RequestState.APPROVED
    for store in stores:
        store.engine.dispose()


def approve_at_once(
    start: threading.Barrier, store: GrantStore, request_id: int, approver: str, results: list[ApprovalResult]
) -> None:
    start.wait()
    results.append(store.approve(request_id, user_id=approver).result)


def test_production_needs_its_own_number(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> None:
    production = start_app(
        fake_slack,
        fake_mturk,
        database_url,
        MTURK_ENV="production",
        APPROVALS_REQUIRED="1",
        PRODUCTION_APPROVALS_REQUIRED="2",
    )
    try:
        message = post_request(production)
        assert "PRODUCTION" in message_text(message) and "Needs 2 approvers" in message_text(message)
        production.click(APPROVER, "approve_request")
        message_showing(production, "(1 of 2)")
        assert state(production) is RequestState.PENDING
        assert production.mturk.calls("AssociateQualificationWithWorker") == []
        production.click(APPROVER_2, "approve_request")
        assert production.wait_final().state is RequestState.DONE
    finally:
        production.stop()


def test_the_sandbox_ignores_the_production_number(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    sandbox = start_app(fake_slack, fake_mturk, database_url, PRODUCTION_APPROVALS_REQUIRED="2")
    try:
        message = post_request(sandbox)
        assert "Needs" not in message_text(message)
        sandbox.click(APPROVER, "approve_request")
        assert sandbox.wait_final().state is RequestState.DONE
    finally:
        sandbox.stop()


def test_a_pending_request_keeps_the_number_it_was_made_with(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    before = start_app(fake_slack, fake_mturk, database_url, APPROVALS_REQUIRED="2")
    post_request(before)
    before.stop()
    after = start_app(fake_slack, fake_mturk, database_url, APPROVALS_REQUIRED="1")
    try:
        after.click(APPROVER, "approve_request")
        message_showing(after, "(1 of 2)")
        assert state(after) is RequestState.PENDING
        after.request(f"{QUAL} A1WORKER0000009")  # made now: one approval is enough
        after.approval_message(2)
        after.click(APPROVER, "approve_request", 2)
        assert after.wait_final(2).state is RequestState.DONE
        after.click(APPROVER_2, "approve_request")
        assert after.wait_final().state is RequestState.DONE
    finally:
        after.stop()


# ---------------------------------------------------------------------------------------------- reject


def open_reject_form(app: RunningApp, user: str = APPROVER, request_id: int = 1) -> dict[str, Any]:
    """Click Reject with a trigger that, as Slack's, lives 3 seconds; the form the app opened with it."""
    trigger = app.slack.new_trigger_id()
    assert app.click(user, "reject_request", request_id, trigger_id=trigger).status == 200
    (call,) = app.slack.wait_for(
        lambda: [c for c in app.slack.calls_to("views.open") if c.args["trigger_id"] == trigger]
    )
    assert call.injected is None  # opened, with the click's trigger, in time
    return call.args["view"]


def submit_reason(app: RunningApp, form: dict[str, Any], reason: str, user: str = APPROVER) -> Any:
    response = app.sender.submit_view(
        user, reject_reason_values(reason), private_metadata=form["private_metadata"], callback_id=form["callback_id"]
    )
    assert response.status == 200
    return response.json()


def test_reject_opens_a_form_and_changes_nothing_until_it_is_submitted(app: RunningApp) -> None:
    post_request(app)
    form = open_reject_form(app)
    assert form["callback_id"] == "reject_request_modal"
    assert json.loads(form["private_metadata"])["request_id"] == 1
    reason = next(b for b in form["blocks"] if b.get("block_id") == "reject_reason")
    assert reason["optional"] is True  # REJECT_REASON_REQUIRED is off by default
    assert "Reject request #1" in message_text({"blocks": form["blocks"]})
    assert state(app) is RequestState.PENDING
    assert app.slack.calls_to("chat.update") == []

    assert submit_reason(app, form, "") is None  # an empty reason is fine: the form closes
    request = app.wait_final()
    assert request.state is RequestState.REJECTED and request.decision_reason is None
    (reply,) = app.posts("rejected")
    assert "Reason" not in message_text(reply)
    assert_valid_block_kit(app.slack)


def test_a_required_reason_comes_back_inline_then_shows_in_thread_and_dm(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    app = start_app(fake_slack, fake_mturk, database_url, REJECT_REASON_REQUIRED="true")
    try:
        post_request(app)
        form = open_reject_form(app)
        reason = next(b for b in form["blocks"] if b.get("block_id") == "reject_reason")
        assert reason["optional"] is False
        answer = submit_reason(app, form, "   ")
        assert answer["response_action"] == "errors" and "reject_reason" in answer["errors"]
        assert state(app) is RequestState.PENDING and app.slack.calls_to("chat.update") == []

        assert submit_reason(app, form, "Already granted last week <!channel>\nsee #12") is None
        request = app.wait_final()
        assert request.state is RequestState.REJECTED and request.decided_by == APPROVER
        (reply,) = app.posts("rejected")
        (dm,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
        for told in (reply, dm):
            plain = [b["text"]["text"] for b in told["blocks"] if b["text"]["type"] == "plain_text"]
            assert plain == ["Reason: Already granted last week <!channel>\nsee #12"]
            assert "Reason: Already granted last week &lt;!channel&gt; see #12" in told["text"]
        assert app.mturk.calls("AssociateQualificationWithWorker") == []
        assert_valid_block_kit(app.slack)
    finally:
        app.stop()


def test_a_long_hostile_reason_stays_within_slacks_limits(app: RunningApp) -> None:
    post_request(app)
    form = open_reject_form(app)
    assert submit_reason(app, form, "<&>" * 2000) is None  # past the form's limit, as a forged submission could
    request = app.wait_final()
    assert request.decision_reason == ("<&>" * 2000)[:1000]
    app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert_valid_block_kit(app.slack)


def test_a_reject_submitted_after_someone_else_approved_changes_nothing(app: RunningApp) -> None:
    post_request(app)
    form = open_reject_form(app, APPROVER_2)
    app.click(APPROVER, "approve_request")  # while the form is open
    assert app.wait_final().state is RequestState.DONE
    answer = submit_reason(app, form, "Too late", user=APPROVER_2)
    assert answer["response_action"] == "update"
    validate_view(answer["view"])
    told = message_text({"blocks": answer["view"]["blocks"]}).strip()
    assert told == f"Request #1 is already done by <@{APPROVER}>."
    request = app.grant_qual.store.get(1)
    assert request is not None and request.state is RequestState.DONE and request.decision_reason is None
    assert app.posts("rejected") == [] and EventKind.REJECTED not in kinds(app)
    assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}


def test_the_forms_submission_is_checked_again(app: RunningApp) -> None:
    """Who submits, and the message the form names, are checked as a click is: nothing changes otherwise."""
    post_request(app)
    form = open_reject_form(app)
    outsider = submit_reason(app, form, "no", user=OUTSIDER)
    assert "Only approvers" in message_text({"blocks": outsider["view"]["blocks"]})
    elsewhere = {**form, "private_metadata": json.dumps({"request_id": 1, "channel_id": "D0X", "message_ts": "1.0"})}
    moved = submit_reason(app, elsewhere, "no")
    assert "not on request #1's message" in message_text({"blocks": moved["view"]["blocks"]})
    broken = submit_reason(app, {**form, "private_metadata": "{}"}, "no")
    assert "does not belong to a grant request" in message_text({"blocks": broken["view"]["blocks"]})
    assert state(app) is RequestState.PENDING and app.slack.calls_to("chat.update") == []


def test_reject_refused_at_the_click_opens_no_form(app: RunningApp) -> None:
    post_request(app)
    app.click(OUTSIDER, "reject_request", response_key="out", trigger_id=app.slack.new_trigger_id())
    assert "Only approvers" in ephemeral(app, "out")
    app.click(REQUESTER, "cancel_request")
    app.slack.wait_for(lambda: app.posts("cancelled"))
    app.click(APPROVER, "reject_request", response_key="late", trigger_id=app.slack.new_trigger_id())
    assert f"Request #1 was cancelled by <@{REQUESTER}>" in ephemeral(app, "late")
    assert app.slack.calls_to("views.open") == []


def test_a_replayed_reject_submission_is_taken_once(app: RunningApp) -> None:
    post_request(app)
    form = open_reject_form(app)
    payload = app.sender.view_submission_payload(
        APPROVER,
        reject_reason_values("dup"),
        private_metadata=form["private_metadata"],
        callback_id=form["callback_id"],
    )
    body, headers = app.sender.prepare({"payload": json.dumps(payload)})
    assert app.sender.send(body, headers).status == 200
    assert app.sender.send(body, headers).status == 200  # byte for byte: acknowledged, nothing done
    app.wait_final()
    assert kinds(app).count(EventKind.REJECTED) == 1 and len(app.posts("rejected")) == 1


# ---------------------------------------------------------------------------------------------- migrations


def test_upgrading_a_database_with_a_pending_request_keeps_it_needing_one(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, any_database_url: str
) -> None:
    engine = create_database_engine(any_database_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        alembic_command.upgrade(config, "0005")
        conn.exec_driver_sql(
            "INSERT INTO grant_requests (requester_id, qualification_type_id, qualification_name, send_notification,"
            " reason, mturk_env, state, worker_count, created_at, round) VALUES"
            f" ('{REQUESTER}', '{QUAL}', 'Q', true, 'old', 'sandbox', 'pending', 1, CURRENT_TIMESTAMP, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO worker_grants (request_id, worker_id, position, status, updated_at, round) VALUES"
            f" (1, '{WORKERS[0]}', 0, 'pending', CURRENT_TIMESTAMP, 1)"
        )
    engine.dispose()
    app = start_app(fake_slack, fake_mturk, any_database_url, APPROVALS_REQUIRED="2")  # upgrades
    try:
        request = app.grant_qual.store.get(1)
        assert request is not None and request.approvals_required == 1 and request.decision_reason is None
        assert app.grant_qual.store.approve(1, user_id=APPROVER).result is ApprovalResult.APPROVED
        assert app.grant_qual.service.store.events(1)[-1].kind is EventKind.APPROVED
    finally:
        app.stop()


# ---------------------------------------------------------------------------------------------- settings, policy

BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "GRANT_REQUESTERS": "U01",
    "GRANT_APPROVERS": "U02,U03",
    "APPROVAL_CHANNEL": "C01",
}


def test_approval_settings_default_and_are_read() -> None:
    default = load_settings(BASE)
    assert (default.approvals_required, default.production_approvals_required) == (1, None)
    assert default.reject_reason_required is False
    set_ = load_settings(
        {**BASE, "APPROVALS_REQUIRED": "2", "PRODUCTION_APPROVALS_REQUIRED": "2", "REJECT_REASON_REQUIRED": "yes"}
    )
    assert (set_.approvals_required, set_.production_approvals_required, set_.reject_reason_required) == (2, 2, True)
    grouped = load_settings({**BASE, "GRANT_APPROVERS": "S0APPROVERS", "APPROVALS_REQUIRED": "3"})
    assert grouped.approvals_required == 3  # a user group may have any number of members


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"APPROVALS_REQUIRED": "3"}, "APPROVALS_REQUIRED is 3 but GRANT_APPROVERS lists 2 approver(s)"),
        ({"PRODUCTION_APPROVALS_REQUIRED": "5"}, "PRODUCTION_APPROVALS_REQUIRED is 5 but GRANT_APPROVERS lists 2"),
        ({"APPROVALS_REQUIRED": "0"}, "APPROVALS_REQUIRED must be between 1 and 20"),
        ({"APPROVALS_REQUIRED": "two"}, "APPROVALS_REQUIRED must be a whole number"),
        ({"REJECT_REASON_REQUIRED": "maybe"}, "REJECT_REASON_REQUIRED must be true or false"),
    ],
)
def test_bad_approval_settings_are_one_clear_line(change: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **change})
    assert fragment in str(caught.value) and "README" in str(caught.value) and "\n" not in str(caught.value)


def test_policy_counts_approvals_by_environment_and_never_the_requesters() -> None:
    policy = AccessPolicy(
        frozenset({"UREQ", "UAPP"}),
        frozenset({"UAPP", "UAPP2"}),
        allow_self_approval=True,
        approvals_required=2,
        production_approvals_required=3,
    )
    assert policy.approvals_needed(MTurkEnvironment.SANDBOX) == 2
    assert policy.approvals_needed(MTurkEnvironment.PRODUCTION) == 3
    assert (
        AccessPolicy(frozenset(), frozenset(), approvals_required=2).approvals_needed(MTurkEnvironment.PRODUCTION) == 2
    )
    assert policy.approval_refusal("UAPP2", "UAPP", 2) is None
    assert "does not count" in (policy.approval_refusal("UAPP", "UAPP", 2) or "")
    assert policy.approval_refusal("UAPP", "UAPP", 1) is None  # ALLOW_SELF_APPROVAL, one approval needed
    assert "Only approvers" in (policy.approval_refusal("UREQ", "UAPP", 1) or "")


def test_an_approval_in_the_other_environment_counts_for_nothing(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    sandbox = start_app(fake_slack, fake_mturk, database_url, APPROVALS_REQUIRED="2")
    post_request(sandbox)
    sandbox.stop()
    production = start_app(fake_slack, fake_mturk, database_url, MTURK_ENV="production", APPROVALS_REQUIRED="2")
    try:
        production.click(APPROVER, "approve_request", response_key="elsewhere")
        assert "made in the SANDBOX" in ephemeral(production, "elsewhere")
        assert production.grant_qual.store.approvers(1) == ()
        assert EventKind.APPROVAL_ADDED not in kinds(production) and state(production) is RequestState.PENDING
    finally:
        production.stop()
    back = start_app(fake_slack, fake_mturk, database_url, APPROVALS_REQUIRED="2")
    try:
        back.click(APPROVER, "approve_request")
        message_showing(back, "(1 of 2)")
        back.click(APPROVER_2, "approve_request")
        assert back.wait_final().state is RequestState.DONE
    finally:
        back.stop()


def test_the_reject_form_and_the_approvals_line_stay_within_block_kit_limits() -> None:
    request = GrantRequest(
        id=123456789012345678,
        requester_id=REQUESTER,
        qualification_type_id="3" + "Q" * 63,
        qualification_name="&<>" * 500,
        send_notification=True,
        reason="",
        mturk_env="production",
        state=RequestState.PENDING,
        worker_count=10_000,
        created_at=now(),
        approvals_required=20,
    )
    validate_view(blocks.reject_modal(request, json.dumps({"request_id": request.id}), reason_required=True))
    approvers = [f"U{i:010d}" for i in range(19)]
    _, message_blocks = blocks.request_message(request, OutcomeDigest(), approvers=approvers)
    validate_blocks(message_blocks)
    assert "(19 of 20) — waiting for one more approver" in message_text({"blocks": message_blocks})


def test_a_form_slack_would_not_open_is_said_and_changes_nothing(app: RunningApp) -> None:
    post_request(app)
    app.slack.error_next("views.open", "expired_trigger_id")
    app.click(APPROVER, "reject_request", response_key="slow", trigger_id=app.slack.new_trigger_id())
    told = ephemeral(app, "slow")
    assert "did not open the form" in told and "expired_trigger_id" in told and "click Reject again" in told
    assert state(app) is RequestState.PENDING and app.slack.calls_to("chat.update") == []
    assert app.reject(APPROVER, "second try").status == 200  # a new click, a new trigger
    assert app.wait_final().state is RequestState.REJECTED


def test_an_undo_needs_as_many_approvers_as_any_request(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    app = start_app(fake_slack, fake_mturk, database_url, APPROVALS_REQUIRED="2", GRANT_APPROVERS=THREE_APPROVERS)
    try:
        post_request(app)
        app.click(APPROVER, "approve_request")
        message_showing(app, "(1 of 2)")
        app.click(APPROVER_2, "approve_request")
        assert app.wait_final().state is RequestState.DONE
        summary = app.summary()
        app.sender.click(APPROVER, "undo_request", "1", message=summary, message_ts=summary["ts"], channel_id=CHANNEL)
        undo = app.slack.wait_for(lambda: app.grant_qual.store.get(2))
        assert undo.approvals_required == 2 and undo.requester_id == APPROVER
        app.approval_message(2)
        app.click(APPROVER, "approve_request", 2, response_key="own")  # who asked for the undo never counts
        assert "cannot decide on your own request" in ephemeral(app, "own")
        app.click(APPROVER_2, "approve_request", 2)
        message_showing(app, "(1 of 2)", 2)
        assert state(app, 2) is RequestState.PENDING
        app.click(APPROVER_3, "approve_request", 2)
        assert app.wait_final(2).state is RequestState.DONE
    finally:
        app.stop()
