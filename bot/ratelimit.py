"""Client-side pacing of MTurk calls that finds MTurk's rate by itself.

MTurk publishes no request-rate limit; it answers ThrottlingException when a caller goes too fast. The
limiter spaces calls evenly at its current rate (no bursts, so a sliding-window limit is not tripped by
clumps) and adapts like TCP CUBIC: on throttling it cuts the rate below what was actually accepted and
remembers that ceiling; afterwards it climbs back fast while far below the ceiling, slowly near it, and
probes gently above it, so it spends most of its time just under the real limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class AdaptiveRateLimiter:
    def __init__(
        self,
        max_rate: float,
        *,
        min_rate: float = 1.0,
        cut_factor: float = 0.9,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_rate = max_rate
        self.min_rate = min_rate
        self.rate = max_rate
        self.ceiling: float | None = None  # the accepted rate when MTurk last throttled
        self.throttles = 0
        self._cut_factor = cut_factor
        self._cooldown = cooldown
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._last_cut = -1e9
        self._last_growth = clock()
        self._accepted: deque[float] = deque()

    def acquire(self) -> None:
        """Wait for this call's slot: slots are 1/rate apart."""
        with self._lock:
            now = self._clock()
            slot = max(self._next_slot, now)
            self._next_slot = slot + 1.0 / self.rate
        if slot > now:
            self._sleep(slot - now)

    def on_success(self) -> None:
        with self._lock:
            now = self._clock()
            self._accepted.append(now)
            self._forget_before(now - 1.0)
            self._grow(now)

    def on_throttle(self) -> None:
        with self._lock:
            now = self._clock()
            self.throttles += 1
            if now - self._last_cut < self._cooldown:
                return  # one cut per burst of throttles: they all describe the same overshoot
            self._forget_before(now - 1.0)
            self.ceiling = min(self.rate, self._accepted_rate(now))
            self.rate = max(self.min_rate, self.ceiling * self._cut_factor)
            self._last_cut = now
            self._last_growth = now

    def _accepted_rate(self, now: float) -> float:
        """What MTurk accepted in the trailing second: under a per-second limit, that count is the limit."""
        return float(len(self._accepted)) or self.rate

    def _grow(self, now: float) -> None:
        elapsed = now - self._last_growth
        if elapsed < 0.05:
            return
        self._last_growth = now
        if self.ceiling is None:
            growth = 0.5  # never throttled yet: find the limit quickly
        elif self.rate < 0.97 * self.ceiling:
            growth = 0.15
        elif self.rate < self.ceiling:
            growth = 0.01
        else:
            growth = 0.03  # above the last ceiling: MTurk may allow more now
        self.rate = min(self.max_rate, self.rate * (1.0 + growth * elapsed))

    def _forget_before(self, moment: float) -> None:
        while self._accepted and self._accepted[0] < moment:
            self._accepted.popleft()
