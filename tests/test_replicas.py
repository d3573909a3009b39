"""Two replicas on one PostgreSQL database: exactly one grant per worker and one result post."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.requests import RequestState
from tests.conftest import APPROVER, APPROVER_2, QUAL, REQUESTER, RunningApp, start_app
from tests.fakes import FakeMTurk, FakeSlack

WORKERS = [f"A{i:013d}" for i in range(60)]


def test_two_replicas_same_clicks_and_retries(fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str) -> None:
    first = start_app(fake_slack, fake_mturk, postgres_url)
    second = start_app(fake_slack, fake_mturk, postgres_url)
    try:
        first.request(f"{QUAL} {' '.join(WORKERS)} value=5")
        message = first.approval_message()
        fake_mturk.latency = 0.01
        clicks = []
        for replica in (first, second):
            for approver in (APPROVER, APPROVER_2):
                for retry in (None, 1, 2):
                    clicks.append(
                        threading.Thread(
                            target=replica.sender.click,
                            args=(approver, "approve_request", "1"),
                            kwargs={"message_ts": message["ts"], "retry_num": retry},
                        )
                    )
        for click in clicks:
            click.start()
        for click in clicks:
            click.join()
        request = first.wait_final(timeout=30)
        assert request.state is RequestState.DONE
        assert second.grant_qual.store.get(1).state is RequestState.DONE  # type: ignore[union-attr]
        time.sleep(1.0)
        assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}
        finished = first.posts("finished")
        assert len(finished) == 1
        assert len(fake_slack.dms_to(REQUESTER)) == 1
    finally:
        first.stop()
        second.stop()


@pytest.fixture
def granting_replicas(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str
) -> Iterator[tuple[RunningApp, RunningApp]]:
    """Two replicas with a short lease; the first has the request approved and is granting it, slowly."""
    first = start_app(fake_slack, fake_mturk, postgres_url, GRANT_LEASE_SECONDS="2", MTURK_MAX_CONCURRENCY="2")
    second = start_app(fake_slack, fake_mturk, postgres_url, GRANT_LEASE_SECONDS="2")
    try:
        first.request(f"{QUAL} {' '.join(WORKERS)}")
        first.approval_message()
        fake_mturk.latency = 0.05
        first.click(APPROVER, "approve_request")  # only the first replica sees the click
        yield first, second
    finally:
        first.stop()
        second.stop()


def test_a_replica_that_dies_mid_grant_is_taken_over(
    granting_replicas: tuple[RunningApp, RunningApp], fake_slack: FakeSlack, fake_mturk: FakeMTurk
) -> None:
    first, second = granting_replicas
    fake_slack.wait_for(lambda: fake_mturk.grant_counts().total() >= 5)
    first.grant_qual.executor._stopping.set()  # it stops taking work, as if it had died
    request = second.wait_final(timeout=40)
    assert request.state is RequestState.DONE
    assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}


def test_a_replica_held_up_by_a_slow_slack_keeps_its_lease(
    granting_replicas: tuple[RunningApp, RunningApp], fake_slack: FakeSlack, fake_mturk: FakeMTurk
) -> None:
    """Progress updates that take longer than the lease must not let the other replica grant the same workers."""
    first, _ = granting_replicas
    fake_slack.wait_for(lambda: first.posts("approved"))  # the progress message is up
    fake_slack.slow_methods["chat.update"] = 5.0
    fake_slack.wait_for(lambda: fake_mturk.grant_counts().total() >= len(WORKERS), timeout=30)
    fake_slack.slow_methods.clear()
    request = first.wait_final(timeout=40)
    assert request.state is RequestState.DONE
    assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}
    assert len(fake_mturk.calls("AssociateQualificationWithWorker")) == len(WORKERS)
    assert len(first.posts("finished")) == 1
