"""Pure logic: the adaptive limiter finds an unpublished rate limit and stays just under it."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from itertools import pairwise

import pytest

from bot.ratelimit import CUT_FACTOR, AdaptiveRateLimiter


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def drive(
    limiter: AdaptiveRateLimiter, time: SimulatedTime, limit: float, seconds: float
) -> tuple[list[float], list[float]]:
    """Calls as fast as the limiter allows against a server accepting `limit` calls in any trailing second."""
    accepted: deque[float] = deque()
    accepted_at: list[float] = []
    throttled_at: list[float] = []
    while time.now < seconds:
        limiter.acquire()
        time.now += 0.0001  # the call itself
        while accepted and accepted[0] <= time.now - 1.0:
            accepted.popleft()
        if len(accepted) < limit:
            accepted.append(time.now)
            accepted_at.append(time.now)
            limiter.on_success()
        else:
            throttled_at.append(time.now)
            limiter.on_throttle()
    return accepted_at, throttled_at


@pytest.mark.parametrize("limit", [5, 100, 400])
def test_finds_the_limit_and_keeps_over_ninety_percent_of_it(limit: float) -> None:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(1000, clock=time.clock, sleep=time.sleep)
    accepted_at, throttled_at = drive(limiter, time, limit, seconds=60)
    steady = [t for t in accepted_at if t >= 10]
    # At a handful of calls a second, each probe above the limit costs a whole call: allow that one.
    assert len(steady) / 50 >= min(0.9 * limit, limit - 1)
    assert len([t for t in throttled_at if t >= 2]) <= 58  # after the first overshoot, at most one probe a second
    assert limiter.ceiling is not None and limiter.ceiling <= limit * 1.05


def test_never_exceeds_the_configured_maximum() -> None:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(50, clock=time.clock, sleep=time.sleep)
    accepted_at, throttled_at = drive(limiter, time, limit=10_000, seconds=10)
    assert not throttled_at
    assert len(accepted_at) <= 50 * 10 + 1


def test_calls_are_spaced_evenly_not_in_bursts() -> None:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(20, clock=time.clock, sleep=time.sleep)
    starts = []
    for _ in range(10):
        limiter.acquire()
        starts.append(time.now)
    gaps = [b - a for a, b in pairwise(starts)]
    assert all(abs(gap - 0.05) < 1e-9 for gap in gaps)


def accepted_fifty_in_a_second() -> tuple[AdaptiveRateLimiter, SimulatedTime]:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(100, clock=time.clock, sleep=time.sleep)
    for _ in range(50):
        limiter.on_success()
        time.now += 0.019
    return limiter, time


def test_replicas_starting_work_together_send_between_each_other() -> None:
    """Sending in step, two replicas each send into the first full second before hearing of the other's
    throttle; interleaved, a cut reaches the other between two of its calls."""
    time = SimulatedTime()
    time.now = 5.0037  # any moment: the slots are the shared clock's, not the start's
    replicas = [AdaptiveRateLimiter(100, clock=time.clock, sleep=time.sleep, wall=time.clock) for _ in range(2)]
    sent: list[tuple[float, int]] = []
    for rank, limiter in enumerate(replicas):
        limiter.share, limiter.rank = 2, rank
    for _ in range(5):
        for rank, limiter in enumerate(replicas):
            limiter.acquire()
            sent.append((time.now, rank))
    sent.sort()
    assert [rank for _, rank in sent] == [0, 1] * 5
    assert [later - earlier for (earlier, _), (later, _) in pairwise(sent)] == pytest.approx([0.01] * 9)


def test_a_burst_of_throttles_cuts_once() -> None:
    limiter, _ = accepted_fifty_in_a_second()
    for _ in range(10):
        limiter.on_throttle()
    # MTurk accepted 50 calls in the trailing second: that is the ceiling, and the rate goes just under it.
    assert limiter.ceiling == 50
    assert limiter.rate == pytest.approx(CUT_FACTOR * 50)
    assert limiter.throttles == 10


def test_each_cut_is_reported_once_as_it_is_made() -> None:
    """The budget writes a cut down and tells the other replicas as soon as it is reported (bot/budget.py)."""
    limiter, time = accepted_fifty_in_a_second()
    reported: list[float | None] = []
    limiter.on_cut = lambda: reported.append(limiter.ceiling)
    for _ in range(5):  # one overshoot: one cut
        limiter.on_throttle()
    assert reported == [50]
    time.now += 1.5
    limiter.on_throttle()  # below the ceiling just found: no cut, nothing to report
    assert reported == [50]


def test_backing_off_for_another_replica_cuts_once_per_overshoot() -> None:
    """Another replica's throttle cuts this one as its own would. For an overshoot this one has cut for
    already, it is the replicas' better estimate of the same one: it replaces the cut's ceiling, once."""
    limiter, time = accepted_fifty_in_a_second()
    limiter.on_throttle()  # its own cut: 50
    limiter.back_off(49)  # the replicas' count for the same overshoot
    assert limiter.ceiling == 49 and limiter.rate == pytest.approx(CUT_FACTOR * 49) and limiter.cuts == 1
    time.now += 1.5
    limiter.back_off(52)  # a new overshoot, seen by another replica: back off even at a pace under that ceiling
    assert limiter.ceiling == 52 and limiter.rate == pytest.approx(CUT_FACTOR * 52)


def test_after_another_replicas_throttle_no_call_goes_into_the_full_second() -> None:
    """MTurk's second is full when another replica is throttled; this one counts only its own calls in it, and
    under its share of the new rate (24 of 25) would send at once, into the full second."""
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(200, clock=time.clock, sleep=time.sleep)
    limiter.share = 2
    first_sent = time.now
    for _ in range(24):
        limiter.acquire()
        limiter.on_success()
        time.now += 0.01
    limiter.back_off(50)  # the other replica had 26 accepted: the account's 50
    limiter.acquire()
    assert time.now >= first_sent + 1.0  # once this limiter's oldest call has left MTurk's second


def test_throttles_below_the_limit_just_found_do_not_cut_again() -> None:
    limiter, time = accepted_fifty_in_a_second()
    limiter.on_throttle()
    time.now += 1.5  # past the cooldown, still climbing back to the ceiling
    limiter.on_success()
    assert limiter.rate < limiter.ceiling == 50
    before = limiter.rate
    limiter.on_throttle()
    assert limiter.rate == before and limiter.ceiling == 50


def test_after_a_cut_the_rate_is_back_at_the_ceiling_within_seconds_and_then_probes_above() -> None:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(1000, clock=time.clock, sleep=time.sleep)
    for _ in range(10):  # a sporadic throttle early on, when only 10 calls were accepted: a ceiling far too low
        limiter.on_success()
        time.now += 0.01
    limiter.on_throttle()
    assert limiter.ceiling == 10
    rates = {}
    for tenth in range(1, 101):
        time.now += 0.1
        limiter.on_success()
        rates[tenth / 10] = limiter.rate
    assert rates[2.0] >= 10  # back at the ceiling
    assert rates[10.0] > 100  # and well beyond it once MTurk keeps accepting


def test_sporadic_throttles_do_not_ratchet_the_rate_down() -> None:
    """MTurk throttling 4% of calls at random, whatever the pace: a fair share of the demand still goes through."""
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(200, clock=time.clock, sleep=time.sleep)
    chance = random.Random(7)
    accepted = 0
    while time.now < 60:
        limiter.acquire()
        time.now += 0.01  # one caller making 10 ms calls: demand is 100 calls/s
        if chance.random() < 0.04:
            limiter.on_throttle()
        else:
            limiter.on_success()
            accepted += time.now >= 10
    assert accepted / 50 >= 15  # the limiter this replaced settled near 5/s here


def test_a_call_made_again_after_a_throttle_goes_before_those_waiting() -> None:
    """It had its turn; behind the others, the last throttled call of a batch held the batch's result back."""
    limiter = AdaptiveRateLimiter(5.0)  # a slot every 0.2 s, on the real clock
    limiter.acquire()
    order: list[str] = []

    def call(name: str, again: bool = False) -> None:
        limiter.acquire(again=again)
        order.append(name)

    waiting = [threading.Thread(target=call, args=(f"waiting-{i}",)) for i in range(3)]
    for thread in waiting:
        thread.start()
    time.sleep(0.05)  # all three queued for the next slots
    retry = threading.Thread(target=call, args=("again", True))
    retry.start()
    for thread in (*waiting, retry):
        thread.join(5)
    # The first waiter already holds the turn, waiting for the clock; the call made again is next.
    assert order[1] == "again" and len(order) == 4
