"""One bounded retry policy for MTurk calls, and no second grant (or email) when an answer was lost.

A real boto3 client, built as the app builds it, talks to the fake MTurk, which can apply a grant and then
drop the connection or answer only after the client's read timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest

import bot.mturk as mturk_module
from bot.config import MTurkEnvironment, load_settings
from bot.mturk import GRANT_ATTEMPTS, MTurkGateway, create_mturk_client
from bot.requests import OUTCOME_UNKNOWN, GrantSpec, RequestState, WorkerStatus, WorkerTarget
from bot.store import GrantStore, create_database_engine
from tests.conftest import APPROVER, QUAL, REQUESTER, WORKERS, RunningApp, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text

WORKER = WORKERS[0]


class CountingPacer:
    def __init__(self) -> None:
        self.acquired = self.successes = self.throttles = 0
        self.again: list[bool] = []  # per acquire: whether the call was made again after a throttle

    def acquire(self, *, again: bool = False) -> None:
        self.acquired += 1
        self.again.append(again)

    def on_success(self) -> None:
        self.successes += 1

    def on_throttle(self) -> None:
        self.throttles += 1


@pytest.fixture
def pacer() -> CountingPacer:
    return CountingPacer()


@pytest.fixture
def gateway(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, pacer: CountingPacer
) -> Iterator[MTurkGateway]:
    settings = load_settings(app_environment(fake_slack, fake_mturk, database_url))
    client = create_mturk_client(settings, read_timeout=0.5)
    yield MTurkGateway(client, MTurkEnvironment.SANDBOX, pacer=pacer, backoff_base=0.01)
    client.close()


def grant(gateway: MTurkGateway, worker_id: str = WORKER) -> WorkerStatus:
    return gateway.grant(WorkerTarget(worker_id, 5), QUAL, send_notification=True).status


def associate_calls(fake: FakeMTurk) -> int:
    return len(fake.calls("AssociateQualificationWithWorker"))


@pytest.mark.parametrize("status", [500, 400])
def test_persistent_service_fault_is_attempted_exactly_the_stated_number_of_times(
    gateway: MTurkGateway, fake_mturk: FakeMTurk, pacer: CountingPacer, status: int
) -> None:
    fake_mturk.service_fault_status = status  # botocore would retry a 500 by itself, not a 400
    fake_mturk.fail_next("ServiceFault", times=100)
    outcome = gateway.grant(WorkerTarget(WORKER, 5), QUAL, send_notification=True)
    assert outcome.status is WorkerStatus.FAILED and outcome.error_code == "AWS.MechanicalTurk.ServiceFault"
    assert f"after {GRANT_ATTEMPTS} attempts" in (outcome.hint or "")
    assert associate_calls(fake_mturk) == GRANT_ATTEMPTS == 6
    assert pacer.acquired == GRANT_ATTEMPTS  # every attempt waits for a slot, botocore's loop or ours
    assert fake_mturk.calls("GetQualificationScore") == []  # MTurk answered: nothing is in doubt


def test_the_limiter_learns_from_every_attempt(
    gateway: MTurkGateway, fake_mturk: FakeMTurk, pacer: CountingPacer
) -> None:
    fake_mturk.fail_next("ThrottlingException", times=2)
    assert grant(gateway) is WorkerStatus.GRANTED
    assert (pacer.acquired, pacer.throttles, pacer.successes) == (3, 2, 1)


def test_a_throttled_call_goes_again_at_the_pacers_next_slot_without_sleeping_first(
    gateway: MTurkGateway, fake_mturk: FakeMTurk, pacer: CountingPacer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pacer slows every call at a throttle; a sleep on top only held the batch's last results back.
    A second throttle in a row backs off as any failure does."""
    sleeps: list[float] = []
    monkeypatch.setattr(mturk_module, "time", SimpleNamespace(sleep=sleeps.append, monotonic=time.monotonic))
    fake_mturk.fail_next("ThrottlingException", times=1)
    assert grant(gateway) is WorkerStatus.GRANTED
    assert sleeps == [] and pacer.acquired == 2
    assert pacer.again == [False, True]  # the call made again goes before the others waiting
    fake_mturk.fail_next("ThrottlingException", times=2)
    assert grant(gateway, WORKERS[1]) is WorkerStatus.GRANTED
    assert len(sleeps) == 1 and pacer.acquired == 5


def test_unpaced_calls_back_off_after_a_throttle(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(mturk_module, "time", SimpleNamespace(sleep=sleeps.append, monotonic=time.monotonic))
    client = create_mturk_client(load_settings(app_environment(fake_slack, fake_mturk, database_url)))
    unpaced = MTurkGateway(client, MTurkEnvironment.SANDBOX)
    fake_mturk.fail_next("ThrottlingException", times=1)
    assert grant(unpaced) is WorkerStatus.GRANTED
    assert len(sleeps) == 1
    client.close()


def test_a_dropped_answer_is_read_back_not_granted_again(gateway: MTurkGateway, fake_mturk: FakeMTurk) -> None:
    fake_mturk.fail_next("DropAfterGrant")
    assert grant(gateway) is WorkerStatus.GRANTED
    assert fake_mturk.grant_counts() == {WORKER: 1}
    assert associate_calls(fake_mturk) == 1 and len(fake_mturk.calls("GetQualificationScore")) == 1


def test_an_answer_past_the_read_timeout_is_read_back_not_granted_again(
    gateway: MTurkGateway, fake_mturk: FakeMTurk
) -> None:
    fake_mturk.slow_answer_seconds = 1.5  # the client gives up after 0.5 s; the grant has landed by then
    fake_mturk.fail_next("SlowAnswerAfterGrant")
    assert grant(gateway) is WorkerStatus.GRANTED
    assert fake_mturk.grant_counts() == {WORKER: 1}
    assert associate_calls(fake_mturk) == 1


def test_a_call_lost_before_it_landed_is_made_again_after_the_read_back(
    gateway: MTurkGateway, fake_mturk: FakeMTurk
) -> None:
    fake_mturk.fail_next("DropBeforeGrant", times=2)
    assert grant(gateway) is WorkerStatus.GRANTED
    assert fake_mturk.grant_counts() == {WORKER: 1}
    assert associate_calls(fake_mturk) == 3 and len(fake_mturk.calls("GetQualificationScore")) == 2
    assert fake_mturk.current_value(QUAL, WORKER) == 5


def test_an_answer_lost_at_the_last_attempt_is_read_back_too(gateway: MTurkGateway, fake_mturk: FakeMTurk) -> None:
    fake_mturk.fail_next("DropBeforeGrant", times=GRANT_ATTEMPTS - 1)
    fake_mturk.fail_next("DropAfterGrant")
    assert grant(gateway) is WorkerStatus.GRANTED
    assert associate_calls(fake_mturk) == GRANT_ATTEMPTS and fake_mturk.grant_counts() == {WORKER: 1}


def test_worker_without_the_qualification_is_still_granted_after_a_crash(
    gateway: MTurkGateway, fake_mturk: FakeMTurk
) -> None:
    fake_mturk.preset_grant(QUAL, WORKER, 4)  # holds it, with another score: the call before the crash did not land
    outcome = gateway.grant(WorkerTarget(WORKER, 5), QUAL, send_notification=False, may_have_landed=True)
    assert outcome.status is WorkerStatus.GRANTED and fake_mturk.current_value(QUAL, WORKER) == 5
    fake_mturk.preset_grant(QUAL, WORKERS[1], 5)  # holds exactly what the call would give: it landed
    outcome = gateway.grant(WorkerTarget(WORKERS[1], 5), QUAL, send_notification=False, may_have_landed=True)
    assert outcome.status is WorkerStatus.GRANTED and fake_mturk.grant_counts() == {WORKER: 1}


def test_lost_answers_during_an_approved_grant_email_each_worker_once(app: RunningApp) -> None:
    for worker in WORKERS[:2]:
        app.mturk.fail_next("DropAfterGrant", worker_id=worker)
    app.request(f"{QUAL} {' '.join(WORKERS)} value=9")
    app.approval_message()
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert "all 3 worker(s)" in message_text(app.summary())
    assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}
    emailed = [g.worker_id for g in app.mturk.grants if g.send_notification]
    assert sorted(emailed) == sorted(WORKERS)  # MTurk emails a worker once per call with SendNotification
    app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert len(app.slack.dms_to(REQUESTER)) == 1


def test_when_mturk_never_says_the_worker_fails_as_unknown_and_retry_failed_reads_back_first(
    gateway: MTurkGateway, fake_mturk: FakeMTurk, database_url: str
) -> None:
    fake_mturk.latency = 1.0  # every answer, the read-backs' too, comes after the client's 0.5 s read timeout
    outcome = gateway.grant(WorkerTarget(WORKER, 5), QUAL, send_notification=True)
    assert outcome.status is WorkerStatus.FAILED and outcome.error_code == OUTCOME_UNKNOWN
    assert "not called again" in (outcome.hint or "")
    assert associate_calls(fake_mturk) == 1 and fake_mturk.grant_counts() == {WORKER: 1}

    # Retry failed calls such a worker only after reading it back, as after a crash.
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    spec = GrantSpec(QUAL, (WorkerTarget(WORKER, 5), WorkerTarget(WORKERS[1], 5)))
    request = store.create_request(spec, requester_id=REQUESTER, mturk_env="sandbox", qualification_name=None)
    assert store.decide(request.id, user_id=APPROVER, approve=True)
    assert store.claim(request.id, owner="x", lease=timedelta(seconds=30), mturk_env="sandbox")
    store.mark_dispatched_through(request.id, 0, 1)  # both workers' calls went out
    plain_failure = replace(outcome, worker_id=WORKERS[1], error_code="AWS.MechanicalTurk.ServiceFault")
    store.record_outcomes(request.id, [outcome, plain_failure])
    assert store.finish(request.id, owner="x") is RequestState.FAILED
    assert store.retry_failed(request.id, round=1, user_id=APPROVER)
    in_doubt = {p.target.worker_id for p in store.pending_page(request.id, -1, 10) if p.dispatched}
    assert in_doubt == {WORKER}
    store.engine.dispose()


def test_the_previews_reads_wait_for_the_same_pacer_as_grants(
    gateway: MTurkGateway, fake_mturk: FakeMTurk, pacer: CountingPacer
) -> None:
    fake_mturk.preset_grant(QUAL, WORKER, 3)
    assert gateway.qualification_score(QUAL, WORKER) is not None
    assert [len(page) for page in gateway.holder_pages(QUAL, "Granted")] == [1]
    assert pacer.acquired == 2 and pacer.successes == 2
