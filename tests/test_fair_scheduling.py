"""Several approved requests at once: they share MTurk's rate, and a small one never waits behind big ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.requests import RequestState
from tests.conftest import APPROVER, QUAL, RunningApp, start_app
from tests.fakes import FakeMTurk, FakeSlack


def workers(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:013d}" for i in range(n)]


@pytest.fixture
def paced_app(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> Iterator[RunningApp]:
    running = start_app(fake_slack, fake_mturk, database_url, MTURK_MAX_TPS="100")
    yield running
    running.stop()


def test_a_small_request_approved_while_big_ones_run_finishes_first(paced_app: RunningApp) -> None:
    app = paced_app
    big = {request_id: workers(200, f"AB{request_id}") for request_id in range(1, 6)}
    small = workers(3, "AS")
    for ids in [*big.values(), small]:  # request 6 is the small one, previewed and posted beforehand
        app.request(f"{QUAL} {' '.join(ids)}")
    app.approval_message(6)
    app.mturk.latency = 0.05  # as MTurk: 50 ms a call, at most 100 calls in any second
    app.mturk.throttle_above_tps = 100
    for request_id in big:
        app.click(APPROVER, "approve_request", request_id=request_id)
    app.slack.wait_for(lambda: app.mturk.grant_counts().total() >= 100, timeout=30)

    app.click(APPROVER, "approve_request", request_id=6)
    assert app.wait_final(6, timeout=30).state is RequestState.DONE

    # Its result is in the thread while every big request is still granting, each having had its turns.
    states = {request_id: app.grant_qual.store.get(request_id).state for request_id in big}  # type: ignore[union-attr]
    assert set(states.values()) == {RequestState.GRANTING}
    counts = app.mturk.grant_counts()
    granted = {request_id: sum(counts[w] for w in ids) for request_id, ids in big.items()}
    assert all(0 < n < 200 for n in granted.values()), granted
    assert max(granted.values()) - min(granted.values()) <= 40, granted  # interleaved, not one after another

    for request_id in big:
        assert app.wait_final(request_id, timeout=60).state is RequestState.DONE
    everyone = [w for ids in big.values() for w in ids] + small
    assert app.mturk.grant_counts() == {w: 1 for w in everyone}  # each worker granted exactly once
