"""Which worker is called next: fair turns across the approved requests being carried out at once.

Pure: no threads, no clock, no database. The executor admits a request with its pending targets, asks
`next_call()` whenever a call may start, and withdraws a request that must stop (its lease lost, or
shutdown). The policy:

- **Even turns.** Each active request has a count of turns (calls dispatched); the one with the fewest
  goes next, ties in the order they last had a turn. Requests running side by side therefore interleave
  one call each, whatever their size, and each gets an equal share of MTurk's rate.
- **A head start for newcomers.** A request admitted while others run starts `head_start` turns behind the
  fewest any active request has had, so its first `head_start` calls go out before the others' next ones.
  A request of up to that many workers is dispatched at once, in front of the running ones (its result
  comes within about one MTurk round trip); a bigger one then takes even turns. Each newcomer delays
  the running requests by at most `head_start` calls, so nobody waits behind another request's size.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Target = TypeVar("Target")


@dataclass
class _Lane(Generic[Target]):
    targets: Sequence[Target]
    next_index: int = 0
    turns: int = 0
    withdrawn: bool = False

    @property
    def remaining(self) -> int:
        return len(self.targets) - self.next_index


@dataclass(order=True)
class _Entry:
    turns: int
    order: int
    request_id: int = field(compare=False)


class FairScheduler(Generic[Target]):
    def __init__(self, head_start: int = 16) -> None:
        self._head_start = head_start
        self._lanes: dict[int, _Lane[Target]] = {}
        self._queue: list[_Entry] = []  # one entry per lane with targets left
        self._order = itertools.count()

    def admit(self, request_id: int, targets: Sequence[Target]) -> None:
        """Add a request's pending targets, in the order they are to be called."""
        if request_id in self._lanes:
            raise ValueError(f"request #{request_id} is already scheduled")
        running = [lane.turns for lane in self._lanes.values() if lane.remaining and not lane.withdrawn]
        lowest = min(running, default=self._head_start)
        lane = _Lane(targets, turns=lowest - self._head_start)
        self._lanes[request_id] = lane
        if lane.remaining:
            heapq.heappush(self._queue, _Entry(lane.turns, next(self._order), request_id))

    def next_call(self) -> tuple[int, Target] | None:
        """The request and target to call next, or None when no active request has a target left."""
        while self._queue:
            entry = heapq.heappop(self._queue)
            lane = self._lanes.get(entry.request_id)
            if lane is None or lane.withdrawn or not lane.remaining:
                continue
            target = lane.targets[lane.next_index]
            lane.next_index += 1
            lane.turns += 1
            if lane.remaining:
                heapq.heappush(self._queue, _Entry(lane.turns, next(self._order), entry.request_id))
            return entry.request_id, target
        return None

    def upcoming(self, request_id: int, count: int) -> Sequence[Target]:
        """The request's next `count` targets not dispatched yet (to mark them dispatched ahead, in one go)."""
        lane = self._lanes[request_id]
        return lane.targets[lane.next_index : lane.next_index + count]

    def dispatched(self, request_id: int) -> int:
        """How many of the request's targets were handed out so far."""
        return self._lanes[request_id].next_index

    def remaining(self, request_id: int) -> int:
        """Targets not handed out yet (0 once withdrawn or unknown)."""
        lane = self._lanes.get(request_id)
        return 0 if lane is None or lane.withdrawn else lane.remaining

    def withdraw(self, request_id: int) -> None:
        """Hand out nothing more for this request (its lease was lost, or the executor is stopping)."""
        if (lane := self._lanes.get(request_id)) is not None:
            lane.withdrawn = True

    def forget(self, request_id: int) -> None:
        """Drop a request that has ended (done, withdrawn, or stopped)."""
        lane = self._lanes.pop(request_id, None)
        if lane is not None:
            lane.withdrawn = True

    def active(self) -> list[int]:
        return list(self._lanes)
