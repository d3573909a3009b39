"""Pure logic: the adaptive limiter finds an unpublished rate limit and stays just under it."""

from __future__ import annotations

from collections import deque
from itertools import pairwise

import pytest

from bot.ratelimit import AdaptiveRateLimiter


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def drive(limiter: AdaptiveRateLimiter, time: SimulatedTime, limit: float, seconds: float) -> tuple[list[float], int]:
    """Calls as fast as the limiter allows against a server accepting `limit` calls in any trailing second."""
    accepted: deque[float] = deque()
    accepted_at: list[float] = []
    throttled = 0
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
            throttled += 1
            limiter.on_throttle()
    return accepted_at, throttled


@pytest.mark.parametrize("limit", [5, 100, 400])
def test_finds_the_limit_and_keeps_over_ninety_percent_of_it(limit: float) -> None:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(1000, clock=time.clock, sleep=time.sleep)
    accepted_at, throttled = drive(limiter, time, limit, seconds=60)
    steady = [t for t in accepted_at if t >= 10]
    assert len(steady) / 50 >= 0.9 * limit
    assert throttled <= max(30, 0.05 * len(accepted_at))  # the first overshoot, then rare probes
    assert limiter.ceiling is not None and limiter.ceiling <= limit * 1.05


def test_never_exceeds_the_configured_maximum() -> None:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(50, clock=time.clock, sleep=time.sleep)
    accepted_at, throttled = drive(limiter, time, limit=10_000, seconds=10)
    assert throttled == 0
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


def test_a_burst_of_throttles_cuts_once() -> None:
    time = SimulatedTime()
    limiter = AdaptiveRateLimiter(100, clock=time.clock, sleep=time.sleep)
    for _ in range(50):
        limiter.on_success()
        time.now += 0.01
    for _ in range(10):
        limiter.on_throttle()
    # MTurk accepted 50 calls in the trailing second: that is the ceiling, and the rate goes just under it.
    assert limiter.ceiling == 50
    assert limiter.rate == pytest.approx(45)
    assert limiter.throttles == 10
