"""A background thread that runs one sweep now and then every `interval` seconds, until stopped.

The sweeps themselves (pending requests, expiring grants) are compare-and-swaps in the database, so every
replica may run them; a failed sweep is logged and tried again at the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicSweep:
    def __init__(self, sweep: Callable[[], object], *, interval: float, name: str, what: str) -> None:
        self._sweep = sweep
        self._interval = interval
        self._name = name
        self._what = what  # for the log line: "sweeping <what> failed"
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sweep now (catching up on what came due while no process ran), then every `interval` seconds."""
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            try:
                self._sweep()
            except Exception:
                log.exception("sweeping %s failed; will try again", self._what)
            if self._stopping.wait(self._interval):
                return
