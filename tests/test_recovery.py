"""Crash recovery and clean stops, with `python app.py` as a real process killed for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.requests import EventKind, RequestState, WorkerStatus
from bot.store import GrantStore, create_database_engine
from tests.app_process import AppProcess
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackSender

WORKER_COUNT = 400
BIG_BATCH = [f"A{i:013d}" for i in range(WORKER_COUNT)]


@pytest.fixture
def processes() -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    yield started
    for process in started:
        process.stop()


def launch(
    processes: list[AppProcess], fake_slack: FakeSlack, fake_mturk: FakeMTurk, url: str, tmp: Path
) -> AppProcess:
    env = app_environment(fake_slack, fake_mturk, url, MTURK_MAX_CONCURRENCY="4", GRANT_LEASE_SECONDS="2")
    process = AppProcess(env, tmp, name=f"app{len(processes)}").start()
    processes.append(process)
    return process


def request_and_approve(process: AppProcess, fake_slack: FakeSlack, store: GrantStore) -> None:
    sender = SlackSender(process.events_url, "test-signing-secret-0123456789", fake_slack.response_url(""))
    assert sender.command(REQUESTER, f"{QUAL} {' '.join(BIG_BATCH)}").status == 200
    request = fake_slack.wait_for(lambda: (r := store.get(1)) and r.message_ts and r)
    assert sender.click(APPROVER, "approve_request", "1", message_ts=request.message_ts).status == 200


def granted_ids(store: GrantStore) -> set[str]:
    return {o.worker_id for o in store.outcomes(1) if o.status is WorkerStatus.GRANTED}


def result_posts(fake_slack: FakeSlack, store: GrantStore) -> list[dict]:
    request = store.get(1)
    assert request is not None and request.message_ts
    replies = fake_slack.thread_replies(CHANNEL, request.message_ts)
    return [m for m in replies if ((m.get("metadata") or {}).get("event_payload") or {}).get("kind") == "finished"]


def grant_partly(
    processes: list[AppProcess], fake_slack: FakeSlack, fake_mturk: FakeMTurk, url: str, tmp: Path, at_least: int
) -> tuple[AppProcess, GrantStore]:
    """Start the app, request and approve the big batch, and return once `at_least` workers are recorded."""
    fake_mturk.latency = 0.02
    store = GrantStore(create_database_engine(url))
    process = launch(processes, fake_slack, fake_mturk, url, tmp)
    store.upgrade_schema()
    request_and_approve(process, fake_slack, store)
    fake_slack.wait_for(lambda: len(granted_ids(store)) >= at_least, timeout=30)
    return process, store


def test_sigkill_mid_grant_resumes_without_calling_anyone_twice(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path, processes: list[AppProcess]
) -> None:
    first, store = grant_partly(processes, fake_slack, fake_mturk, database_url, tmp_path, 60)
    first.kill()
    recorded_before_kill = granted_ids(store)
    assert 0 < len(recorded_before_kill) < WORKER_COUNT
    assert store.get(1).state is RequestState.GRANTING  # type: ignore[union-attr]

    launch(processes, fake_slack, fake_mturk, database_url, tmp_path)
    fake_slack.wait_for(lambda: store.get(1).state.is_final and result_posts(fake_slack, store), timeout=60)  # type: ignore[union-attr]
    assert store.get(1).state is RequestState.DONE  # type: ignore[union-attr]
    calls = fake_mturk.grant_counts()
    assert all(calls[w] == 1 for w in recorded_before_kill)  # never re-called what was recorded
    assert calls == {w: 1 for w in BIG_BATCH}  # in-doubt workers were read back, not granted again
    time.sleep(1.5)  # a late duplicate would show up here
    assert len(result_posts(fake_slack, store)) == 1
    assert len(fake_slack.dms_to(REQUESTER)) == 1


def test_sigterm_records_calls_in_flight_exits_cleanly_and_restart_finishes(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path, processes: list[AppProcess]
) -> None:
    first, store = grant_partly(processes, fake_slack, fake_mturk, database_url, tmp_path, 40)
    assert first.terminate(timeout=20) == 0
    assert "stopped" in first.log()
    stopped_with = granted_ids(store)
    assert len(stopped_with) < WORKER_COUNT
    assert len(stopped_with) == fake_mturk.grant_counts().total()  # every call made was recorded
    assert store.get(1).state is RequestState.GRANTING  # type: ignore[union-attr]

    launch(processes, fake_slack, fake_mturk, database_url, tmp_path)
    fake_slack.wait_for(lambda: result_posts(fake_slack, store), timeout=60)
    assert fake_mturk.grant_counts() == {w: 1 for w in BIG_BATCH}
    assert [e.kind for e in store.events(1)] == [EventKind.SUBMITTED, EventKind.APPROVED, EventKind.FINISHED]


def test_start_up_log_names_environment_and_hides_secrets(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path, processes: list[AppProcess]
) -> None:
    env = app_environment(fake_slack, fake_mturk, database_url, MTURK_ENV="production")
    process = AppProcess(env, tmp_path).start()
    processes.append(process)
    assert process.terminate() == 0
    log = process.log()
    assert "MTurk PRODUCTION" in log
    assert "xoxb-test-token" not in log and "test-signing-secret" not in log and FakeMTurk.SECRET_KEY not in log
