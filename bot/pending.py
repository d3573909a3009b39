"""Pending requests do not hang forever: the approvers are reminded once, and a request nobody decided expires.

A sweep runs on every replica. Each expiry and each reminder is a compare-and-swap on the request row with its
event (the outbox) in the same transaction, so whichever replica sees a request due first acts on it and the
others find it done: exactly once, however many sweep at the same moment. Time comes from an injected clock,
so the tests drive hours in an instant. Expiring calls no MTurk, so a replica of either environment may do it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.periodic import PeriodicSweep
from bot.store import GrantStore, now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """The requests this sweep expired and reminded (another replica's are not listed)."""

    expired: list[int]
    reminded: list[int]


class PendingSweeper:
    def __init__(
        self,
        store: GrantStore,
        *,
        ttl: timedelta,
        remind_after: timedelta | None,
        clock: Callable[[], datetime] = now,
        interval: float = 60.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.remind_after = remind_after  # None: no reminders
        self.clock = clock
        self._on_change = on_change  # told when there is something new to deliver (wakes the outbox)
        self._periodic = PeriodicSweep(self.sweep, interval=interval, name="pending-sweeper", what="pending requests")

    def sweep(self) -> SweepResult:
        """Expire what is due, then remind what is due: a request past both expires without a reminder first."""
        moment = self.clock()
        expired = self.store.expire_pending(moment=moment, ttl=self.ttl)
        reminded = self.store.remind_pending(moment=moment, after=self.remind_after) if self.remind_after else []
        for request_id in expired:
            log.info("request #%s expired: no decision within %s", request_id, self.ttl)
        for request_id in reminded:
            log.info("request #%s: approvers reminded, still pending", request_id)
        if expired or reminded:
            self._on_change()
        return SweepResult(expired, reminded)

    def start(self) -> None:
        """Sweep now (catching up on what came due while no process ran), then every `interval` seconds."""
        self._periodic.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._periodic.stop(timeout)
