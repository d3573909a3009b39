"""Which worker is called next: fair turns across the approved requests being carried out at once.

Pure: no threads, no clock, no database. The executor admits a request, feeds it its pending targets a page
at a time (a 100,000-worker request is never held whole), asks `next_call()` whenever a call may start,
and withdraws a request that must stop (its lease lost, or shutdown). The policy:

- **Even turns.** Each active request has a count of turns (calls dispatched); the one with the fewest
  goes next, ties in the order they last had a turn. Requests running side by side therefore interleave
  one call each, whatever their size, and each gets an equal share of MTurk's rate.
- **A head start for newcomers.** A request admitted while others run starts `head_start` turns behind the
  fewest any active request has had, so its first `head_start` calls go out before the others' next ones.
  A request of up to that many workers is dispatched at once, in front of the running ones (its result
  comes within about one MTurk round trip); a bigger one then takes even turns. Each newcomer delays
  the running requests by at most `head_start` calls, so nobody waits behind another request's size.
- **A request waiting for its next page sits out.** It gets no turn until it is fed; it then rejoins at
  the fewest turns any active request has had, not below: the turns it sat out are not owed to it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Target = TypeVar("Target")


@dataclass
class _Lane(Generic[Target]):
    ready: deque[Target]  # fed, not handed out yet
    more_coming: bool  # further pages will be fed
    turns: int = 0
    withdrawn: bool = False
    queued: bool = False  # has an entry in the queue


@dataclass(order=True)
class _Entry:
    turns: int
    order: int
    request_id: int = field(compare=False)


class FairScheduler(Generic[Target]):
    def __init__(self, head_start: int = 16) -> None:
        self._head_start = head_start
        self._lanes: dict[int, _Lane[Target]] = {}
        self._queue: list[_Entry] = []  # one entry per lane with targets ready
        self._order = itertools.count()

    def admit(self, request_id: int, targets: Iterable[Target] = (), *, more_coming: bool = False) -> None:
        """Add a request with its first pending targets, in the order they are to be called; `more_coming`:
        further pages will be fed (until then the request is not done, even with nothing ready)."""
        if request_id in self._lanes:
            raise ValueError(f"request #{request_id} is already scheduled")
        lane: _Lane[Target] = _Lane(deque(targets), more_coming, turns=self._lowest_turns() - self._head_start)
        self._lanes[request_id] = lane
        self._enqueue(request_id, lane)

    def feed(self, request_id: int, targets: Iterable[Target], *, more_coming: bool) -> None:
        """The request's next page of targets; `more_coming` False with the last one. Ignored once withdrawn."""
        lane = self._lanes.get(request_id)
        if lane is None or lane.withdrawn:
            return
        if not lane.ready and not lane.queued:
            lane.turns = max(lane.turns, self._lowest_turns())  # sat out while waiting: not owed those turns
        lane.ready.extend(targets)
        lane.more_coming = more_coming
        self._enqueue(request_id, lane)

    def next_call(self) -> tuple[int, Target] | None:
        """The request and target to call next, or None when no active request has a target ready."""
        while self._queue:
            entry = heapq.heappop(self._queue)
            lane = self._lanes.get(entry.request_id)
            if lane is None or not lane.queued:
                continue
            lane.queued = False
            if lane.withdrawn or not lane.ready:
                continue
            target = lane.ready.popleft()
            lane.turns += 1
            self._enqueue(entry.request_id, lane)
            return entry.request_id, target
        return None

    def ready(self, request_id: int) -> int:
        """Targets fed and not handed out yet (0 once withdrawn or unknown)."""
        lane = self._lanes.get(request_id)
        return 0 if lane is None or lane.withdrawn else len(lane.ready)

    def remaining(self, request_id: int) -> int:
        """Targets ready, plus one while more pages are to come: 0 means nothing more will be handed out."""
        lane = self._lanes.get(request_id)
        if lane is None or lane.withdrawn:
            return 0
        return len(lane.ready) + lane.more_coming

    def withdraw(self, request_id: int) -> None:
        """Hand out nothing more for this request (its lease was lost, or the executor is stopping)."""
        if (lane := self._lanes.get(request_id)) is not None:
            lane.withdrawn = True
            lane.ready.clear()

    def forget(self, request_id: int) -> None:
        """Drop a request that has ended (done, withdrawn, or stopped)."""
        lane = self._lanes.pop(request_id, None)
        if lane is not None:
            lane.withdrawn = True

    def _lowest_turns(self) -> int:
        running = [lane.turns for lane in self._lanes.values() if lane.queued]
        return min(running, default=self._head_start)

    def _enqueue(self, request_id: int, lane: _Lane[Target]) -> None:
        if lane.ready and not lane.queued and not lane.withdrawn:
            lane.queued = True
            heapq.heappush(self._queue, _Entry(lane.turns, next(self._order), request_id))
