"""A request runs in the MTurk environment it was shown in: a process running in the other one grants nothing.

The fake MTurk stands in for both endpoints (MTURK_ENDPOINT_URL points at it whatever MTURK_ENV says), so
any call a process makes for a request of the other environment shows up at the fake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import MTurkEnvironment, load_settings
from bot.executor import GrantExecutor
from bot.mturk import MTurkGateway, create_mturk_client
from bot.requests import EventKind, GrantSpec, RequestState, WorkerStatus, WorkerTarget
from bot.store import GrantStore, create_database_engine
from tests.app_process import AppProcess
from tests.conftest import (
    APPROVER,
    APPROVER_2,
    CHANNEL,
    QUAL,
    REQUESTER,
    SIGNING_SECRET,
    WORKERS,
    RunningApp,
    app_environment,
    posted_for,
    start_app,
)
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackSender, message_text

NOTE = "environment_mismatch"


def ephemeral(app: RunningApp, key: str) -> str:
    return str(app.slack.wait_for(lambda: app.slack.responses_for(key))[0]["text"])


def mturk_calls(fake: FakeMTurk) -> int:
    return len(fake.calls("AssociateQualificationWithWorker")) + len(fake.calls("GetQualificationScore"))


def assert_one_note(app: RunningApp, made_in: str, runs_in: str) -> None:
    (note,) = app.slack.wait_for(lambda: app.posts(NOTE))
    text = message_text(note)
    assert f"made in the {made_in}" in text and f"now runs in {runs_in}" in text and "granted nothing" in text
    time.sleep(1.0)  # a second note (per click, per sweep) would show up here
    assert len(app.posts(NOTE)) == 1


def test_approve_in_the_other_environment_grants_nothing_and_leaves_the_request_pending(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    sandbox = start_app(fake_slack, fake_mturk, database_url)
    sandbox.request(f"{QUAL} {' '.join(WORKERS)}")
    assert "SANDBOX" in message_text(sandbox.approval_message())
    sandbox.stop()
    previewed = mturk_calls(fake_mturk)  # the sandbox app read the workers' scores before posting

    production = start_app(fake_slack, fake_mturk, database_url, MTURK_ENV="production")
    try:
        for key, approver in (("first", APPROVER), ("again", APPROVER), ("other", APPROVER_2)):
            assert production.click(approver, "approve_request", response_key=key).status == 200
            explanation = ephemeral(production, key)
            assert "made in the SANDBOX" in explanation and "now runs in PRODUCTION" in explanation
            assert "nothing was granted" in explanation
        assert_one_note(production, "SANDBOX", "PRODUCTION")
        request = production.grant_qual.store.get(1)
        assert request is not None and request.state is RequestState.PENDING and request.decided_by is None
        assert mturk_calls(fake_mturk) == previewed
        message = production.approval_message()
        assert [b for b in message["blocks"] if b["type"] == "actions"]  # still approvable where it belongs
    finally:
        production.stop()

    sandbox = start_app(fake_slack, fake_mturk, database_url)
    try:
        sandbox.click(APPROVER, "approve_request")
        assert sandbox.wait_final().state is RequestState.DONE
        assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}
    finally:
        sandbox.stop()


def test_retry_failed_in_the_other_environment_grants_nothing(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    fake_mturk.unknown_workers.add(WORKERS[2])
    sandbox = start_app(fake_slack, fake_mturk, database_url)
    sandbox.request(f"{QUAL} {' '.join(WORKERS)}")
    sandbox.approval_message()
    sandbox.click(APPROVER, "approve_request")
    assert sandbox.wait_final().state is RequestState.FAILED
    summary_ts = sandbox.summary()["ts"]
    sandbox.stop()
    fake_mturk.unknown_workers.clear()
    calls_before = mturk_calls(fake_mturk)

    production = start_app(fake_slack, fake_mturk, database_url, MTURK_ENV="production")
    try:
        for key in ("retry", "retry-again"):
            production.sender.click(APPROVER, "retry_failed", "1:1", message_ts=summary_ts, response_key=key)
            explanation = ephemeral(production, key)
            assert "made in the SANDBOX" in explanation and "nothing was granted" in explanation
        assert_one_note(production, "SANDBOX", "PRODUCTION")
        request = production.grant_qual.store.get(1)
        assert request is not None and request.state is RequestState.FAILED and request.round == 1
        assert mturk_calls(fake_mturk) == calls_before
    finally:
        production.stop()

    sandbox = start_app(fake_slack, fake_mturk, database_url)
    try:
        sandbox.sender.click(APPROVER, "retry_failed", "1:1", message_ts=summary_ts)
        sandbox.slack.wait_for(lambda: (r := sandbox.grant_qual.store.get(1)) and r.round == 2 and r.state.is_final)
        assert sandbox.grant_qual.store.get(1).state is RequestState.DONE  # type: ignore[union-attr]
        assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}
    finally:
        sandbox.stop()


# ---------------------------------------------------------------------- resuming after a crash

WORKER_COUNT = 300
BIG_BATCH = [f"A{i:013d}" for i in range(WORKER_COUNT)]


@pytest.fixture
def processes() -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    yield started
    for process in started:
        process.stop()


def launch(
    processes: list[AppProcess], fake_slack: FakeSlack, fake_mturk: FakeMTurk, url: str, tmp: Path, **env: str
) -> AppProcess:
    settings = app_environment(fake_slack, fake_mturk, url, MTURK_MAX_CONCURRENCY="4", GRANT_LEASE_SECONDS="2", **env)
    process = AppProcess(settings, tmp, name=f"app{len(processes)}").start()
    processes.append(process)
    return process


def notes(fake_slack: FakeSlack, store: GrantStore) -> list[dict]:
    request = store.get(1)
    assert request is not None and request.message_ts
    return [m for m in fake_slack.thread_replies(CHANNEL, request.message_ts) if posted_for(m) == NOTE]


def test_a_restarted_process_of_the_other_environment_does_not_resume_the_grant(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path, processes: list[AppProcess]
) -> None:
    fake_mturk.latency = 0.02
    store = GrantStore(create_database_engine(database_url))
    sandbox = launch(processes, fake_slack, fake_mturk, database_url, tmp_path)
    store.upgrade_schema()
    sender = SlackSender(sandbox.events_url, SIGNING_SECRET, fake_slack.response_url(""))
    assert sender.command(REQUESTER, f"{QUAL} {' '.join(BIG_BATCH)}").status == 200
    request = fake_slack.wait_for(lambda: (r := store.get(1)) and r.message_ts and r)
    assert sender.click(APPROVER, "approve_request", "1", message_ts=request.message_ts).status == 200
    fake_slack.wait_for(lambda: store.status_counts(1)[WorkerStatus.GRANTED] >= 40, timeout=30)
    sandbox.kill()
    calls_at_kill = mturk_calls(fake_mturk)

    launch(processes, fake_slack, fake_mturk, database_url, tmp_path, MTURK_ENV="production")
    (note,) = fake_slack.wait_for(lambda: notes(fake_slack, store), timeout=60)  # a slow start under load
    text = message_text(note)
    assert "made in the SANDBOX" in text and "now runs in PRODUCTION" in text and "granted nothing" in text
    time.sleep(3)  # the lease (2 s) has long expired: several recovery sweeps pass here
    assert len(notes(fake_slack, store)) == 1
    assert mturk_calls(fake_mturk) == calls_at_kill
    assert store.get(1).state is RequestState.GRANTING  # type: ignore[union-attr]
    # The executor's own guard, whatever path leads to it: it claims no request of the other environment.
    settings = load_settings(app_environment(fake_slack, fake_mturk, database_url, MTURK_ENV="production"))
    gateway = MTurkGateway(create_mturk_client(settings), MTurkEnvironment.PRODUCTION)
    executor = GrantExecutor(store, gateway, max_concurrency=2, lease=timedelta(seconds=2))
    assert executor.execute(1) is None
    executor.shutdown()
    assert mturk_calls(fake_mturk) == calls_at_kill

    launch(processes, fake_slack, fake_mturk, database_url, tmp_path)  # the sandbox again: it finishes
    fake_slack.wait_for(lambda: store.get(1).state.is_final, timeout=60)  # type: ignore[union-attr]
    assert store.get(1).state is RequestState.DONE  # type: ignore[union-attr]
    assert fake_mturk.grant_counts() == {w: 1 for w in BIG_BATCH}


# ---------------------------------------------------------------------- the store's part, on SQLite and PostgreSQL


@pytest.fixture
def store(store_on_any_database: GrantStore) -> GrantStore:
    return store_on_any_database


def approved_request(store: GrantStore, mturk_env: str) -> int:
    spec = GrantSpec(QUAL, tuple(WorkerTarget(w, None) for w in WORKERS))
    request = store.create_request(spec, requester_id=REQUESTER, mturk_env=mturk_env, qualification_name=None)
    assert store.decide(request.id, user_id=APPROVER, approve=True)
    return request.id


def test_claim_and_resume_only_in_the_requests_own_environment(store: GrantStore) -> None:
    sandbox_id, production_id = approved_request(store, "sandbox"), approved_request(store, "production")
    assert store.resumable_request_ids("production") == [production_id]
    assert store.stranded_request_ids("production") == [sandbox_id]
    lease = timedelta(seconds=30)
    assert not store.claim(sandbox_id, owner="p", lease=lease, mturk_env="production")
    assert store.get(sandbox_id).state is RequestState.APPROVED  # type: ignore[union-attr]
    assert store.claim(sandbox_id, owner="s", lease=lease, mturk_env="sandbox")


def test_the_note_is_recorded_once_per_request_even_when_replicas_race(store: GrantStore) -> None:
    request_id = approved_request(store, "sandbox")
    barrier = threading.Barrier(8)
    recorded: list[bool] = []

    def note() -> None:
        barrier.wait()
        recorded.append(store.note_environment_mismatch(request_id, actor_id=None))

    threads = [threading.Thread(target=note) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(recorded) == [False] * 7 + [True]
    assert [e.kind for e in store.events(request_id)].count(EventKind.ENVIRONMENT_MISMATCH) == 1
    assert store.stranded_request_ids("production") == []  # told once: the sweeps look no further
