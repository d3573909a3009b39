"""One MTurk budget per account: the learned ceiling is remembered and shared by replicas (bot/budget.py)."""

from __future__ import annotations

import os
import threading
import time as wall_time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

import bot.budget
from bot.budget import STALE_AFTER, LearnedCeiling, SharedBudget, SqlBudgetStore
from bot.budget_news import CutNews, Listener, PostgresNews
from bot.ratelimit import CUT_FACTOR, REMEMBERED_HEADROOM, AdaptiveRateLimiter
from bot.requests import RequestState
from bot.store import GrantStore, create_database_engine
from tests.conftest import APPROVER, QUAL, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.test_ratelimit import SimulatedTime, drive

ENV = "sandbox"


class SharedTime(SimulatedTime):
    """One simulated time for the limiters (monotonic seconds) and the database (wall clock)."""

    start = datetime(2026, 11, 29, 12, tzinfo=UTC)

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.now)


@pytest.fixture
def budget_store(store_on_any_database: GrantStore) -> SqlBudgetStore:
    return SqlBudgetStore(store_on_any_database.engine)


@pytest.fixture
def cuts_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared replica's cut is written down AGREE_WITHIN after it is announced, once the replicas have added
    up their counts; tests of what the table alone carries write it at the next tick."""
    monkeypatch.setattr(bot.budget, "AGREE_WITHIN", timedelta(0))


def limiter_at(time: SharedTime, max_rate: float = 200) -> AdaptiveRateLimiter:
    return AdaptiveRateLimiter(max_rate, clock=time.clock, sleep=time.sleep, wall=time.clock)


def replica(time: SharedTime, store: SqlBudgetStore, name: str, *, shared: bool = True) -> SharedBudget:
    return SharedBudget(limiter_at(time), store, ENV, shared=shared, replica_id=name, clock=time.wall)


def throttled_at(limiter: AdaptiveRateLimiter, time: SharedTime, accepted: int) -> None:
    """`accepted` calls accepted in the last second, then MTurk throttles."""
    for _ in range(accepted):
        limiter.acquire()
        limiter.on_success()
        time.now += 0.9 / accepted  # all within the trailing second
    limiter.on_throttle()


# ------------------------------------------------------------------ the limiter, from a remembered ceiling


def test_a_remembered_ceiling_starts_just_below_it_then_probes_above() -> None:
    time = SharedTime()
    limiter = limiter_at(time)
    limiter.start_from(50)
    assert limiter.rate == pytest.approx(REMEMBERED_HEADROOM * 50)
    accepted_at, throttles = drive(limiter, time, limit=50, seconds=3)
    assert len([t for t in accepted_at if 1 <= t < 2]) >= 47  # at the limit from the first second on
    assert len(throttles) <= 3  # against hundreds when starting at max_rate (the next test)
    assert limiter.rate > 50 or limiter.ceiling == pytest.approx(50, abs=2)  # probing above, or found it again


def test_after_a_cut_the_calls_already_sent_in_the_second_count() -> None:
    """Starting cold at 200/s against 50/s: the window is full after the burst, so the limiter waits it out
    instead of sending (and having throttled) at the new pace until the first calls leave the window."""
    time = SharedTime()
    _, throttles = drive(limiter_at(time), time, limit=50, seconds=3)
    assert len(throttles) <= 2


def test_calls_still_in_flight_at_a_throttle_count_as_accepted() -> None:
    """A throttle comes back at once, while the accepted calls sent just before it are still being served."""
    time = SharedTime()
    limiter = limiter_at(time)
    for _ in range(50):
        limiter.acquire()
    for _ in range(33):
        limiter.on_success()  # 17 accepted calls have not answered yet
    limiter.acquire()
    limiter.on_throttle()
    assert limiter.ceiling == pytest.approx(50, abs=1)


def test_a_remembered_ceiling_too_high_is_cut_at_the_first_throttle() -> None:
    """A memory is not a ceiling found here: a throttle below it is news, not a straggler."""
    time = SharedTime()
    limiter = limiter_at(time)
    limiter.start_from(100)
    throttled_at(limiter, time, accepted=40)
    assert limiter.ceiling == pytest.approx(40)
    assert limiter.rate == pytest.approx(CUT_FACTOR * 40)


def test_a_stale_memory_is_probed_above_sooner() -> None:
    fresh_time, stale_time = SharedTime(), SharedTime()
    fresh, stale = limiter_at(fresh_time), limiter_at(stale_time)
    fresh.start_from(50)
    stale.start_from(50, stale=True)
    for time, limiter in ((fresh_time, fresh), (stale_time, stale)):
        time.now += 2.0
        limiter.on_success()
    assert stale.rate > fresh.rate >= 49


def test_the_next_request_in_the_same_process_starts_at_the_ceiling_too() -> None:
    """After a pause the curve's time since the cut says nothing: the next work starts just below the ceiling."""
    time = SharedTime()
    limiter = limiter_at(time)
    drive(limiter, time, limit=50, seconds=5)
    assert limiter.ceiling == pytest.approx(50, abs=3)
    ceiling = limiter.ceiling
    time.now += 600  # idle: the curve alone would be at max_rate by now
    limiter.acquire()
    assert limiter.rate == pytest.approx(REMEMBERED_HEADROOM * ceiling)
    _, throttles = drive(limiter, time, limit=50, seconds=time.now + 3)
    assert len(throttles) <= 3


def test_pacing_is_shared_by_the_replicas_granting() -> None:
    time = SharedTime()
    limiter = limiter_at(time, max_rate=20)
    limiter.share = 2
    starts = []
    for _ in range(5):
        limiter.acquire()
        starts.append(time.now)
    assert starts[-1] - starts[0] == pytest.approx(4 * 2 / 20)


# ------------------------------------------------------------------ the budget in the database


def test_a_new_ceiling_is_remembered_and_the_next_process_starts_at_it(budget_store: SqlBudgetStore) -> None:
    time = SharedTime()
    first = replica(time, budget_store, "first", shared=False)
    assert first.start_from_memory() is None
    throttled_at(first.limiter, time, accepted=50)
    first.tick()
    learned = budget_store.learned(ENV)
    assert learned is not None and learned.rate == pytest.approx(50) and learned.learned_by == "first"

    time.now += 3600
    second = replica(time, budget_store, "second", shared=False)
    second.start_from_memory()
    assert second.limiter.rate == pytest.approx(REMEMBERED_HEADROOM * 50)
    assert budget_store.learned("production") is None  # one budget per environment


def test_a_first_cut_that_undercounts_is_raised_to_what_mturk_accepts_since(budget_store: SqlBudgetStore) -> None:
    """At a run's first throttle the answers of calls still in flight are missing: the ceiling comes out low."""
    time = SharedTime()
    budget = replica(time, budget_store, "first", shared=False)
    budget.limiter.acquire()
    time.now += 0.3
    throttled_at(budget.limiter, time, accepted=33)
    budget.tick()
    assert budget_store.learned(ENV).rate == pytest.approx(33)  # type: ignore[union-attr]
    drive(budget.limiter, time, limit=50, seconds=time.now + 4)  # back to the ceiling and a little above it
    assert budget.limiter.cuts == 1
    budget.tick()
    assert budget_store.learned(ENV).rate > 34  # type: ignore[union-attr]


def test_a_day_old_memory_is_started_at_but_probed_above_at_once(budget_store: SqlBudgetStore) -> None:
    time = SharedTime()
    budget_store.remember(ENV, LearnedCeiling(50, time.wall() - STALE_AFTER - timedelta(hours=1), "long-gone"))
    budget = replica(time, budget_store, "now")
    budget.start_from_memory()
    assert budget.limiter.rate == pytest.approx(REMEMBERED_HEADROOM * 50)
    time.now += 1.0
    budget.limiter.on_success()
    assert budget.limiter.rate > REMEMBERED_HEADROOM * 50


def test_replicas_granting_at_once_each_take_a_share(budget_store: SqlBudgetStore) -> None:
    time = SharedTime()
    first, second = replica(time, budget_store, "first"), replica(time, budget_store, "second")
    first.limiter.acquire()
    first.tick()
    second.tick()  # idle: takes no share, and leaves the first its whole budget
    assert first.limiter.share == 1
    second.limiter.acquire()
    second.tick()
    first.tick()
    assert first.limiter.share == second.limiter.share == 2

    time.now += 2.5  # the second stops granting; the first goes on
    first.limiter.acquire()
    second.tick()
    first.tick()
    assert first.limiter.share == 1
    first.limiter.acquire()
    second.limiter.acquire()
    second.stop()  # a replica that stops frees its share at once
    first.tick()
    assert first.limiter.share == 1


def test_a_throttle_seen_by_one_replica_lowers_the_other(
    budget_store: SqlBudgetStore, cuts_written_at_once: None
) -> None:
    time = SharedTime()
    first, second = replica(time, budget_store, "first"), replica(time, budget_store, "second")
    for budget in (first, second):
        budget.limiter.acquire()
        budget.tick()
    second.tick()
    assert second.limiter.share == 2
    throttled_at(second.limiter, time, accepted=25)  # its half of a 50/s account
    assert second.limiter.ceiling == pytest.approx(50)  # what it saw, times the replicas sharing
    second.tick()
    first.tick()
    assert first.limiter.ceiling == pytest.approx(50)
    assert first.limiter.rate == pytest.approx(CUT_FACTOR * 50)
    first.tick()
    assert first.limiter.rate == pytest.approx(CUT_FACTOR * 50)  # taken once, not again at every tick


def test_a_cut_reaches_the_other_replicas_at_once_and_they_back_off_too(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the others hear of a cut they go on at the old pace and are throttled for the same overshoot: the
    cut is written as it is made and announced (PostgreSQL NOTIFY), and the others take it within milliseconds.
    They back off as if throttled themselves, not only take the ceiling: the account is over its limit now."""
    monkeypatch.setattr(bot.budget, "TICK", 60.0)  # the ticks alone would bring the cut a minute late
    with two_replicas_listening(postgres_url) as (first, second):
        second.limiter.start_from(30)  # under the ceiling the first is about to find: taking it would not slow it
        for _ in range(40):
            first.limiter.acquire()
            first.limiter.on_success()
        first.limiter.on_throttle()
        found = first.limiter.ceiling
        assert found is not None and 40 <= found < 200
        wait_until(lambda: second.limiter.ceiling == found)
        assert second.limiter.ceiling == pytest.approx(found)
        assert second.limiter.rate == pytest.approx(CUT_FACTOR * found)


def test_announcements_stay_within_their_deployments_schema(postgres_url: str) -> None:
    """NOTIFY channels are the database's: a deployment in another schema of the same database must not back
    off for this one's cuts (nor the tests running beside each other)."""
    other_url = f"{postgres_url.rsplit('%3D', 1)[0]}%3D{'o_' + uuid.uuid4().hex[:12]}"
    schema = other_url.rsplit("%3D", 1)[1]
    engine = create_database_engine(os.environ["TEST_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    stores = [PostgresNews(create_database_engine(url)) for url in (postgres_url, other_url)]
    heard: list[list[str]] = [[], []]
    listeners = [Listener(stop=threading.Event()) for _ in stores]
    threads = [
        threading.Thread(target=store.listen, args=(heard[i].append, listeners[i]), daemon=True)
        for i, store in enumerate(stores)
    ]
    try:
        for thread, listener in zip(threads, listeners, strict=True):
            thread.start()
            assert listener.listening.wait(10)
        stores[0].announce("news for the first deployment")
        wait_until(lambda: bool(heard[0]))
        wall_time.sleep(0.1)
        assert heard == [["news for the first deployment"], []]
    finally:
        for listener in listeners:
            listener.stop.set()
        for thread in threads:
            thread.join(5)
        for store in stores:
            store.close()
            store.engine.dispose()
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_replicas_granting_at_once_add_up_their_counts_for_the_account(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A throttled replica estimates the account's count as its own times the share: 26 × 2 = 52 when the
    other had 24 calls accepted in that second. The other adds its count to the first's, and both take the sum."""
    monkeypatch.setattr(bot.budget, "TICK", 60.0)
    with two_replicas_listening(postgres_url) as (first, second):
        for replica_budget in (first, second):
            replica_budget.limiter.acquire()  # granting: checks in at once
        wall_time.sleep(1.1)  # those calls leave the second that counts
        first.limiter.share = second.limiter.share = 2
        for call in range(50):
            limiter = first.limiter if call % 2 == 0 or call >= 48 else second.limiter
            limiter.acquire()
            limiter.on_success()
        first.limiter.acquire()
        first.limiter.on_throttle()
        assert first.limiter.ceiling == pytest.approx(52)
        wait_until(lambda: (first.limiter.ceiling, second.limiter.ceiling) == (50, 50))
        assert (first.limiter.ceiling, second.limiter.ceiling) == (50, 50)
        assert first.limiter.cuts == 1 and second.limiter.cuts == 0  # the sum replaces the cut: not a second one


@contextmanager
def two_replicas_listening(postgres_url: str) -> Iterator[tuple[SharedBudget, SharedBudget]]:
    """Two replicas on a fresh PostgreSQL schema, each announcing on its own connection, started and listening."""
    store = GrantStore(create_database_engine(postgres_url))
    store.upgrade_schema()
    budget_store = SqlBudgetStore(store.engine)
    first, second = (
        SharedBudget(
            AdaptiveRateLimiter(200), budget_store, ENV, shared=True, news=PostgresNews(store.engine), replica_id=name
        )
        for name in ("first", "second")
    )
    try:
        for replica_budget in (first, second):
            replica_budget.start()
            assert replica_budget.listener.listening.wait(10)
        yield first, second
    finally:
        first.stop()
        second.stop()
        store.engine.dispose()


def wait_until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Until `condition` holds, or `seconds` have passed: the caller asserts what it expected."""
    deadline = wall_time.monotonic() + seconds
    while not condition() and wall_time.monotonic() < deadline:
        wall_time.sleep(0.01)


def sharing(time: SharedTime, store: SqlBudgetStore) -> tuple[SharedBudget, SharedBudget]:
    """Two replicas granting at once: each paces at half the account's rate."""
    first, second = replica(time, store, "first"), replica(time, store, "second")
    for budget in (first, second, first):
        budget.limiter.acquire()
        budget.tick()
    assert first.limiter.share == second.limiter.share == 2
    time.now += 1.1  # those check-in calls leave the counting window
    return first, second


def test_of_replicas_granting_at_once_one_probes_above_the_limit(budget_store: SqlBudgetStore) -> None:
    """Each probing on its own, replicas are throttled in turn, one curve each; one probes for all of them.
    Who probes passes on when it stops granting."""
    time = SharedTime()
    first, second = sharing(time, budget_store)
    for budget in (first, second):
        budget.limiter.start_from(50)
    time.now += 10.0  # long past the plateau: a prober's curve is far above the ceiling
    for budget in (first, second):
        budget.limiter.on_success()
    assert first.limiter.probes and first.limiter.rate > 55
    assert not second.limiter.probes and second.limiter.rate == pytest.approx(50)

    time.now += 2.5  # the first stops granting
    second.limiter.acquire()
    first.tick()
    second.tick()
    assert second.limiter.probes and second.limiter.share == 1
    time.now += 5.0  # its curve, restarted by the pause, is past its plateau again
    second.limiter.on_success()
    assert second.limiter.rate > 50


def test_replicas_that_cut_for_the_same_overshoot_agree_on_the_mean(
    budget_store: SqlBudgetStore, cuts_written_at_once: None
) -> None:
    """Each counts its own calls times two, one high and one low (26 and 24 of 50): the lower of them would
    pace the pair under the limit, the mean is the account's count. Neither cuts a second time for it."""
    time = SharedTime()
    first, second = sharing(time, budget_store)
    throttled_at(first.limiter, time, accepted=26)
    for _ in range(24):
        second.limiter.on_success()
    second.limiter.on_throttle()  # its own cut, for the same overshoot
    assert (first.limiter.ceiling, second.limiter.ceiling) == (pytest.approx(52), pytest.approx(48))
    first.tick()
    time.now += 0.1
    second.tick()  # written within a tick of the first's: the same overshoot
    assert budget_store.learned(ENV).rate == pytest.approx(50)  # type: ignore[union-attr]
    assert second.limiter.ceiling == pytest.approx(50)
    time.now += 0.1
    first.tick()
    assert first.limiter.ceiling == pytest.approx(50)
    for budget in (first, second):  # as if each had cut there, and climbing back: not a second cut below it
        assert CUT_FACTOR * 50 <= budget.limiter.rate <= 50
        assert budget.limiter.cuts == 1
    time.now += 2.0
    first.tick()  # seen once: not taken again
    assert first.limiter.ceiling == pytest.approx(50)


def test_the_mean_is_taken_when_it_is_written_second_but_stamped_first(
    budget_store: SqlBudgetStore, cuts_written_at_once: None
) -> None:
    """Replicas writing at once stamp their rows at the start of their ticks: the second write may carry the
    earlier time. It is news all the same."""
    time = SharedTime()
    first, second = sharing(time, budget_store)
    throttled_at(first.limiter, time, accepted=26)
    for _ in range(24):
        second.limiter.on_success()
    second.limiter.on_throttle()
    time.now += 0.005
    first.tick()  # stamped 5 ms after the second's tick began, and written first
    time.now -= 0.005
    second.tick()
    assert budget_store.learned(ENV).rate == pytest.approx(50)  # type: ignore[union-attr]
    time.now += 0.5
    first.tick()
    assert first.limiter.ceiling == pytest.approx(50)


def test_cuts_for_different_overshoots_are_not_averaged(
    budget_store: SqlBudgetStore, cuts_written_at_once: None
) -> None:
    time = SharedTime()
    first, second = sharing(time, budget_store)
    throttled_at(first.limiter, time, accepted=26)
    first.tick()
    time.now += 3.0
    throttled_at(second.limiter, time, accepted=20)  # a later overshoot: the account's limit has dropped
    second.tick()
    assert budget_store.learned(ENV).rate == pytest.approx(40)  # type: ignore[union-attr]
    first.tick()
    assert first.limiter.ceiling == pytest.approx(40)  # taken as a cut of its own


def test_an_announcement_reads_back_as_sent_and_a_stranger_is_ignored() -> None:
    news = CutNews("cut", ENV, "a1b2c3", 1764480000.123456, 26, 52.0)
    assert CutNews.decode(news.encode()) == news
    assert CutNews.decode("another app's notice on this channel") is None


def test_a_replica_with_no_calls_in_that_second_takes_the_announcers_estimate(budget_store: SqlBudgetStore) -> None:
    """Adding up needs both counts: a replica whose calls all left the second (or the announcer's, when its
    first call was throttled) would make a sum of nothing, and back off to a crawl."""
    time = SharedTime()
    _, second = sharing(time, budget_store)
    time.now += 1.5  # its calls have left the second; it still counts as granting
    second._heard(CutNews("cut", ENV, "first", time.wall().timestamp(), 26, 52.0).encode())
    assert second.limiter.ceiling == pytest.approx(52)
    time.now += 3.0
    for _ in range(3):
        second.limiter.acquire()
        second.limiter.on_success()
    second._heard(CutNews("cut", ENV, "first", time.wall().timestamp(), 0, 50.0).encode())
    assert second.limiter.ceiling == pytest.approx(50)  # not 0 + its 3


def test_a_shared_cut_is_written_down_once_the_replicas_could_add_up_their_counts(
    budget_store: SqlBudgetStore,
) -> None:
    time = SharedTime()
    first, _ = sharing(time, budget_store)
    throttled_at(first.limiter, time, accepted=26)
    first.tick()  # announced at once
    assert budget_store.learned(ENV) is None
    first.limiter.back_off(50)  # the replicas' count, announced by the other
    time.now += 0.2
    first.tick()
    assert budget_store.learned(ENV).rate == pytest.approx(50)  # type: ignore[union-attr]


def test_a_replica_alone_writes_its_own_cut(budget_store: SqlBudgetStore) -> None:
    """Unshared (SQLite, one process): nothing to agree with, even right after another process's cut."""
    time = SharedTime()
    budget_store.remember(ENV, LearnedCeiling(60, time.wall(), "an earlier process"))
    alone = replica(time, budget_store, "alone", shared=False)
    throttled_at(alone.limiter, time, accepted=50)
    alone.tick()
    assert budget_store.learned(ENV).rate == pytest.approx(50)  # type: ignore[union-attr]
    assert alone.limiter.ceiling == pytest.approx(50)


def test_concurrent_cuts_for_the_same_overshoot_lose_no_estimate(budget_store: SqlBudgetStore) -> None:
    """Cuts written at the same moment by many replicas: each is merged under the row lock, none overwritten."""
    moment = SharedTime().wall()
    rates = [40.0 + 2**i for i in range(8)]  # no average of some of them is another
    agreed: dict[int, float] = {}
    barrier = threading.Barrier(len(rates))

    def write(i: int) -> None:
        barrier.wait()
        agreed[i] = budget_store.remember_cut(ENV, LearnedCeiling(rates[i], moment, f"replica-{i}"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(rates))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The first write is kept as it is; every later one is averaged with what it found.
    assert sum(agreed[i] == rates[i] for i in agreed) == 1
    stored = budget_store.learned(ENV)
    assert stored is not None and stored.rate in agreed.values() and min(rates) < stored.rate < max(rates)


# ------------------------------------------------------------------ end to end: a grant teaches the next process


def test_a_grant_teaches_the_limit_and_a_restarted_app_starts_at_it(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    fake_mturk.throttle_above_tps = 20
    fake_mturk.latency = 0.01
    first = start_app(fake_slack, fake_mturk, database_url)
    try:
        assert first.grant_qual.budget is not None and first.grant_qual.budget.limiter.rate == 200  # nothing known
        first.request(f"{QUAL} {' '.join(workers('A1', 60))}")
        first.click(APPROVER, "approve_request")
        assert first.wait_final(timeout=30).state is RequestState.DONE
    finally:
        first.stop()
    learning = fake_mturk.injected_faults["ThrottlingException"]
    assert learning > 0

    again = start_app(fake_slack, fake_mturk, database_url)
    try:
        assert again.grant_qual.budget is not None
        assert 10 <= again.grant_qual.budget.limiter.rate <= 20  # just below the limit the first app found
        again.request(f"{QUAL} {' '.join(workers('A2', 60))}")
        again.click(APPROVER, "approve_request", request_id=2)
        assert again.wait_final(request_id=2, timeout=30).state is RequestState.DONE
    finally:
        again.stop()
    remembered = fake_mturk.injected_faults["ThrottlingException"] - learning
    # Started just below the limit: fewer throttles than learning it cold (about 1 against 7 on a quiet machine;
    # a loaded machine bunches calls, so the bound is relative).
    assert remembered < learning, (remembered, learning)
    assert fake_mturk.grant_counts().total() == 120


def workers(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:012d}" for i in range(n)]


def test_two_replicas_granting_at_once_share_the_account(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str
) -> None:
    first = start_app(fake_slack, fake_mturk, postgres_url)
    second = start_app(fake_slack, fake_mturk, postgres_url)
    replicas = (first, second)
    shares: dict[int, set[int]] = {0: set(), 1: set()}
    done = threading.Event()

    def watch_shares() -> None:
        while not done.wait(0.05):
            for index, replica in enumerate(replicas):
                assert replica.grant_qual.budget is not None
                shares[index].add(replica.grant_qual.budget.limiter.share)

    watcher = threading.Thread(target=watch_shares)
    try:
        for index, replica in enumerate(replicas, start=1):
            replica.request(f"{QUAL} {' '.join(workers(f'A{index}', 60))}")
            replica.approval_message(request_id=index)
        fake_mturk.throttle_above_tps = 20
        fake_mturk.latency = 0.01
        watcher.start()
        clicks = [
            threading.Thread(target=replica.click, args=(APPROVER, "approve_request", index))
            for index, replica in enumerate(replicas, start=1)
        ]
        for click in clicks:
            click.start()
        for click in clicks:
            click.join()
        for index, replica in enumerate(replicas, start=1):
            assert replica.wait_final(request_id=index, timeout=40).state is RequestState.DONE
        done.set()
        watcher.join()
        assert 2 in shares[0] and 2 in shares[1]  # each paced at half the account's rate while both granted
        assert fake_mturk.grant_counts().total() == 120
    finally:
        done.set()
        first.stop()
        second.stop()
