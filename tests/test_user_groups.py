"""Allowlists naming Slack user groups: members read from Slack, kept fresh by events and a periodic refresh.

Driven the way Slack drives it: signed commands, clicks and Events API deliveries to the real app over HTTP; the
app reads the groups from the fake Slack with the scopes its manifest asks for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.config import load_settings
from bot.requests import RequestState
from bot.slack.selfcheck import SlackSelfCheck
from bot.slack.usergroups import SlackUserGroups
from bot.store import GrantStore, create_database_engine
from tests.app_process import AppProcess
from tests.conftest import (
    APPROVER,
    BOT_TOKEN,
    OUTSIDER,
    QUAL,
    REQUESTER,
    SIGNING_SECRET,
    WORKERS,
    RunningApp,
    app_environment,
    start_app,
)
from tests.fakes import FakeMTurk, FakeSlack
from tests.fakes.socket_mode import FakeSocketMode
from tests.slack_sender import SlackSender

APPROVERS_GROUP, REQUESTERS_GROUP = "S0APPROVERS", "S0REQUESTERS"
NEWCOMER = "U0NEWCOMER"


def set_members(slack: FakeSlack, group_id: str, users: list[str]) -> None:
    with slack.lock:
        slack.user_groups[group_id]["users"] = list(users)


@pytest.fixture
def grouped_app(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> Iterator[RunningApp]:
    fake_slack.user_groups = {
        APPROVERS_GROUP: {"handle": "mturk-approvers", "users": [APPROVER]},
        REQUESTERS_GROUP: {"handle": "mturk-requesters", "users": [REQUESTER]},
    }
    running = start_app(
        fake_slack, fake_mturk, database_url, GRANT_REQUESTERS=REQUESTERS_GROUP, GRANT_APPROVERS=APPROVERS_GROUP
    )
    yield running
    running.stop()


def ephemeral(app: RunningApp, key: str) -> str:
    return app.slack.wait_for(lambda: app.slack.responses_for(key))[0]["text"]


def members_changed(app: RunningApp, group_id: str) -> None:
    """Slack's event when someone was added to or removed from a group, signed; the app answers 200 at once."""
    event = {"type": "subteam_members_changed", "subteam_id": group_id, "team_id": "T0001", "event_ts": "1.0"}
    assert app.sender.event(event).status == 200


def test_adding_someone_to_the_group_in_slack_lets_them_approve_without_a_restart(grouped_app: RunningApp) -> None:
    app = grouped_app
    app.request(f"{QUAL} {' '.join(WORKERS)}")  # REQUESTER is a requester through the group
    app.approval_message()
    app.click(NEWCOMER, "approve_request", response_key="before")
    assert ephemeral(app, "before") == (
        f":no_entry: Only approvers can approve or reject requests; ask someone in @mturk-approvers. "
        f"Your member ID is {NEWCOMER}. Nothing changed."
    )
    assert app.grant_qual.store.get(1).state is RequestState.PENDING  # type: ignore[union-attr]

    set_members(app.slack, APPROVERS_GROUP, [APPROVER, NEWCOMER])
    members_changed(app, APPROVERS_GROUP)
    app.slack.wait_for(lambda: NEWCOMER in (app.grant_qual.user_groups.members(APPROVERS_GROUP) or ()))
    app.click(NEWCOMER, "approve_request")
    request = app.wait_final()
    assert request.state is RequestState.DONE and request.decided_by == NEWCOMER


def test_removing_someone_takes_effect_on_the_group_updated_event(grouped_app: RunningApp) -> None:
    app = grouped_app
    app.request(f"{QUAL} {WORKERS[0]}", response_key="first")
    app.approval_message()
    set_members(app.slack, REQUESTERS_GROUP, [])
    event = {"type": "subteam_updated", "subteam": {"id": REQUESTERS_GROUP, "handle": "mturk-requesters"}}
    assert app.sender.event(event).status == 200
    app.slack.wait_for(lambda: app.grant_qual.user_groups.members(REQUESTERS_GROUP) == frozenset())
    app.request(f"{QUAL} {WORKERS[1]}", response_key="second")
    refusal = ephemeral(app, "second")
    assert refusal.startswith(":no_entry: Only requesters can request qualification grants; to become one, ask")
    assert "@mturk-approvers" in refusal and f"Your member ID is {REQUESTER}." in refusal
    assert "GRANT_" not in refusal
    assert len(app.grant_qual.store.requests()) == 1


def test_events_for_other_groups_are_acknowledged_and_read_nothing(grouped_app: RunningApp) -> None:
    before = len(grouped_app.slack.calls_to("usergroups.users.list"))
    members_changed(grouped_app, "S0SOMEOTHER")
    assert len(grouped_app.slack.calls_to("usergroups.users.list")) == before


def test_the_events_url_answers_slacks_challenge(grouped_app: RunningApp) -> None:
    answer = grouped_app.sender.post_json({"token": "x", "challenge": "c0ffee", "type": "url_verification"})
    assert answer.status == 200 and "c0ffee" in answer.body


def test_groups_unreadable_at_start_admit_nobody_until_slack_answers(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.user_groups = {APPROVERS_GROUP: {"handle": "mturk-approvers", "users": [APPROVER]}}
    fake_slack.error_next("usergroups.users.list", "internal_error")
    app = start_app(fake_slack, fake_mturk, database_url, GRANT_APPROVERS=APPROVERS_GROUP)
    try:
        assert "Slack user groups could not all be read at start" in caplog.text
        app.request(f"{QUAL} {WORKERS[0]}")
        app.click(APPROVER, "approve_request", response_key="closed")
        refusal = ephemeral(app, "closed")
        assert "could not be read from Slack yet; try again in a minute" in refusal
        assert app.grant_qual.store.get(1).state is RequestState.PENDING  # type: ignore[union-attr]
        members_changed(app, APPROVERS_GROUP)  # any later read lets them in
        app.slack.wait_for(lambda: app.grant_qual.user_groups.members(APPROVERS_GROUP))
        app.click(APPROVER, "approve_request")
        assert app.wait_final().state is RequestState.DONE
    finally:
        app.stop()


def test_the_periodic_refresh_catches_a_missed_event(fake_slack: FakeSlack) -> None:
    fake_slack.user_groups = {APPROVERS_GROUP: {"handle": "mturk-approvers", "users": [APPROVER]}}
    client = WebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    groups = SlackUserGroups(client, {APPROVERS_GROUP}, interval=0.05)
    groups.start()
    try:
        assert groups.members(APPROVERS_GROUP) == {APPROVER} and groups.handle(APPROVERS_GROUP) == "mturk-approvers"
        set_members(fake_slack, APPROVERS_GROUP, [NEWCOMER])  # no event sent
        fake_slack.wait_for(lambda: groups.members(APPROVERS_GROUP) == {NEWCOMER}, timeout=5)
    finally:
        groups.stop()
    assert groups._thread is not None and not groups._thread.is_alive()


def test_no_group_listed_means_no_group_read(app: RunningApp) -> None:
    app.request(f"{QUAL} {WORKERS[0]}", user=OUTSIDER, response_key="o")
    assert "Your member ID is U0OUTSIDE." in ephemeral(app, "o")
    assert app.slack.calls_to("usergroups.users.list") == app.slack.calls_to("usergroups.list") == []


def test_the_self_check_names_each_group_and_its_members(fake_slack: FakeSlack, fake_mturk: FakeMTurk) -> None:
    fake_slack.user_groups = {APPROVERS_GROUP: {"handle": "mturk-approvers", "users": [APPROVER, NEWCOMER]}}
    env = app_environment(fake_slack, fake_mturk, "sqlite://", GRANT_APPROVERS=f"{APPROVERS_GROUP},{APPROVER}")
    check = SlackSelfCheck(load_settings(env))
    check.bot_token()
    assert check.user_groups() == f"@mturk-approvers ({APPROVERS_GROUP}) 2 member(s)"
    missing = SlackSelfCheck(load_settings({**env, "GRANT_APPROVERS": "S0GONE"}))
    missing.bot_token()
    with pytest.raises(Exception, match="S0GONE in GRANT_REQUESTERS or GRANT_APPROVERS is not a user group"):
        missing.user_groups()


def test_a_group_change_arrives_over_socket_mode_too(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path
) -> None:
    fake_slack.user_groups = {APPROVERS_GROUP: {"handle": "mturk-approvers", "users": [APPROVER]}}
    gateway = FakeSocketMode()
    fake_slack.socket_mode = gateway
    env = app_environment(
        fake_slack, fake_mturk, database_url, SLACK_APP_TOKEN=fake_slack.app_token, GRANT_APPROVERS=APPROVERS_GROUP
    )
    process = AppProcess(env, tmp_path, name="socket-mode-groups")
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    store = GrantStore(create_database_engine(database_url))
    try:
        process.start(ready=lambda: gateway.connected)
        gateway.send("slash_commands", slack.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}"))
        request = fake_slack.wait_for(lambda: (r := store.get(1)) and r.message_ts and r)
        set_members(fake_slack, APPROVERS_GROUP, [APPROVER, NEWCOMER])
        reads = len(fake_slack.calls_to("usergroups.users.list"))
        event = {"type": "subteam_members_changed", "subteam_id": APPROVERS_GROUP, "event_ts": "1.0"}
        assert gateway.send("events_api", slack.event_payload(event))["envelope_id"]
        fake_slack.wait_for(lambda: len(fake_slack.calls_to("usergroups.users.list")) > reads)
        time.sleep(0.5)  # the answer is read into the app's cache
        click = slack.click_payload(NEWCOMER, "approve_request", "1", message_ts=request.message_ts)
        gateway.send("interactive", click)
        done = fake_slack.wait_for(lambda: (r := store.get(1)) and r.state.is_final and r, timeout=20)
        assert done.state is RequestState.DONE and done.decided_by == NEWCOMER
    finally:
        process.stop()
        fake_slack.socket_mode = None
        gateway.close()
        store.engine.dispose()
