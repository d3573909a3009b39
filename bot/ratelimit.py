"""Client-side pacing of MTurk calls that finds MTurk's rate by itself.

MTurk publishes no request-rate limit; it answers ThrottlingException when a caller goes too fast. The
limiter spaces calls evenly at its current rate (no bursts, so a sliding-window limit is not tripped by
clumps) and adapts like TCP CUBIC: on throttling it cuts the rate just below what MTurk actually accepted
and remembers that as the ceiling; then the rate follows a cubic curve in the time since the cut: back
to the ceiling quickly, flat near it, then probing above it ever faster. The last part matters as much
as the cut: a throttle that says little about the rate (a sporadic one, or one while demand was low)
sets a ceiling that is too low, and the probe must leave it behind within seconds, not minutes. While the
rate is below a ceiling just found, throttles do not cut it again: they are stragglers or noise, and
cutting on each one would ratchet the rate down to nothing under sporadic throttling.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from bot.turns import TurnQueue

WINDOW = 1.0  # seconds of accepted calls that measure the rate MTurk accepted
MAX_NAP = 0.05  # a waiting call looks at the rate again at least this often


class AdaptiveRateLimiter:
    def __init__(
        self,
        max_rate: float,
        *,
        min_rate: float = 1.0,
        cut_factor: float = 0.9,
        cooldown: float = 1.0,
        probe_scale: float = 0.4,
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
        # calls/s³: how fast the curve leaves the ceiling (TCP CUBIC's C, which botocore's adaptive mode uses too).
        self._probe_scale = probe_scale
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_send = -1e9
        self._turns = TurnQueue()  # callers waiting for a slot, first in first out
        self._last_cut = -1e9
        self._plateau_at = 0.0  # seconds after a cut when the curve is back at the ceiling
        self._accepted: deque[float] = deque()

    def acquire(self) -> None:
        """Wait for this call's slot: one call per 1/rate seconds, at the rate of the moment.

        Callers queue in order and only the first one waits for the clock, looking at the rate again at
        least every MAX_NAP: slots are not booked ahead at the old spacing, so when the rate rises after
        a cut the calls speed up at once.
        """
        with self._turns.turn():
            self._wait_for_slot()

    def _wait_for_slot(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                due = self._last_send + 1.0 / self.rate
                if now >= due:
                    # Keep to the grid when only a little late (sleeps overshoot); after idling, restart it.
                    self._last_send = due if now - due < 1.0 / self.rate else now
                    return
            self._sleep(min(due - now, MAX_NAP))

    def on_success(self) -> None:
        with self._lock:
            now = self._clock()
            self._forget_before(now - WINDOW)
            self._accepted.append(now)
            self.rate = self._rate_at(now)

    def on_throttle(self) -> None:
        with self._lock:
            now = self._clock()
            self.throttles += 1
            if now - self._last_cut < self._cooldown:
                return  # one cut per burst of throttles: they all describe the same overshoot
            if self.ceiling is not None and self.rate < self.ceiling:
                # Already below the last limit found, so this is no news about our pace: a straggler
                # sent before the cut, or a throttle MTurk would have sent at any pace. Cutting again on
                # every such one would ratchet the rate down to nothing; the next probe above re-measures.
                return
            self._forget_before(now - WINDOW)
            self.ceiling = max(self.min_rate, min(self.rate, self._accepted_rate()))
            self.rate = max(self.min_rate, self.ceiling * self._cut_factor)
            self._last_cut = now
            self._plateau_at = (self.ceiling * (1.0 - self._cut_factor) / self._probe_scale) ** (1.0 / 3.0)

    def _accepted_rate(self) -> float:
        """Calls MTurk accepted in the trailing second: under a per-second limit, that count is the limit.

        Early on, or while demand is low, the count is below the limit; the cubic probe then recovers.
        """
        return float(len(self._accepted)) or self.rate

    def _rate_at(self, now: float) -> float:
        if self.ceiling is None:
            return self.max_rate  # never throttled: go as fast as allowed until MTurk says otherwise
        since_cut = now - self._last_cut
        curve = self.ceiling + self._probe_scale * (since_cut - self._plateau_at) ** 3
        return min(self.max_rate, max(self.min_rate, curve))

    def _forget_before(self, moment: float) -> None:
        while self._accepted and self._accepted[0] < moment:
            self._accepted.popleft()
