"""Taking turns between threads: one holder at a time, the turn handed straight to the next waiter.

Used where threads must go one by one in order: SQLite's single writer (a write Slack is waiting on goes
first) and the MTurk rate limiter's slots. Handing the turn over wakes one thread, not all of them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class TurnQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._urgent: deque[threading.Event] = deque()
        self._others: deque[threading.Event] = deque()

    @contextmanager
    def turn(self, *, urgent: bool = False) -> Iterator[None]:
        """Hold the turn for the block; urgent waiters are served before the others, each lane in order."""
        handed: threading.Event | None = None
        with self._lock:
            if self._busy:
                handed = threading.Event()
                (self._urgent if urgent else self._others).append(handed)
            self._busy = True
        if handed is not None:
            handed.wait()
        try:
            yield
        finally:
            with self._lock:
                waiting = self._urgent or self._others
                if waiting:
                    waiting.popleft().set()
                else:
                    self._busy = False
