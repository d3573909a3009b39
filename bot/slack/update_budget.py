"""The app's share of Slack's `chat.update` rate for progress updates, shared by every request.

`chat.update` is a Tier 3 method: about 50 calls a minute per workspace, for every message the app
updates. Progress updates are best effort and may wait; final updates (a request's status line and its
progress message's last words) must not queue behind them. So progress updates take tokens from a bucket
refilled at `per_minute` (40 by default, leaving the rest of Slack's 50 free), and each final update is
charged to the same bucket without waiting, pushing the next progress updates back instead.

Pure: the clock is injected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ChatUpdateBudget:
    def __init__(self, per_minute: float = 40, burst: float = 3, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token for a progress update: 0.0 if taken, else the seconds until one is due (none taken)."""
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate

    def charge(self, updates: int) -> None:
        """Count final updates made (or about to be) without waiting: progress updates make room for them."""
        with self._lock:
            self._refill()
            self._tokens -= updates

    def _refill(self) -> None:
        moment = self._clock()
        self._tokens = min(self._burst, self._tokens + (moment - self._at) * self._rate)
        self._at = moment
