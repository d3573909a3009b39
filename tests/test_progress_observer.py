"""The progress observer: Slack calls off the grant's thread, never a late "granting…" over the last words, and
all requests' progress within one chat.update budget."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from bot.executor import GrantProgress
from bot.requests import RequestState
from bot.slack.progress import SlackGrantObserver
from bot.slack.update_budget import ChatUpdateBudget


class ScriptedMessenger:
    """Stands in for SlackMessenger: records what would be shown; the request's state follows a script."""

    def __init__(self, states: list[RequestState], update_started: threading.Event, release: threading.Event) -> None:
        self.shown: list[str] = []
        self._states = states
        self._update_started = update_started
        self._release = release
        self.store = self

    def get(self, request_id: int) -> Any:
        state = self._states.pop(0) if len(self._states) > 1 else self._states[0]
        return SimpleNamespace(id=request_id, state=state)

    def show_progress(self, request: Any, granted: int, failed: int, remaining: int, rate: float) -> None:
        self._update_started.set()
        self._release.wait(5)  # Slack is slow to answer this one
        self.shown.append(f"granting {granted}/{granted + remaining}")

    def show_recorded_progress(self, request: Any) -> None:
        self.shown.append("last words")


class NoDelivery:
    def wake(self) -> None:
        pass


def test_an_update_that_lands_after_the_grant_ended_is_followed_by_the_last_words() -> None:
    started, release = threading.Event(), threading.Event()
    # Granting when the update is sent; finished (perhaps on another replica) by the time it has landed.
    messenger = ScriptedMessenger([RequestState.GRANTING, RequestState.DONE], started, release)
    observer = SlackGrantObserver(messenger, NoDelivery())  # type: ignore[arg-type]
    request = SimpleNamespace(id=7)

    observer.grant_progressed(request, GrantProgress(40, 0, 60, 95.0))  # type: ignore[arg-type]
    assert started.wait(5)  # returned at once: the grant's own thread does not wait for Slack
    release.set()
    observer.close()
    assert messenger.shown == ["granting 40/100", "last words"]


def test_updates_for_one_request_never_overlap_and_only_the_newest_waiting_one_is_sent() -> None:
    started, release = threading.Event(), threading.Event()
    messenger = ScriptedMessenger([RequestState.GRANTING], started, release)
    observer = SlackGrantObserver(messenger, NoDelivery())  # type: ignore[arg-type]
    request = SimpleNamespace(id=7)

    observer.grant_progressed(request, GrantProgress(10, 0, 90, 95.0))  # type: ignore[arg-type]
    assert started.wait(5)
    for granted in (20, 30, 40):  # arrive while the first is still out
        observer.grant_progressed(request, GrantProgress(granted, 0, 100 - granted, 95.0))  # type: ignore[arg-type]
    release.set()
    observer.close()
    assert messenger.shown == ["granting 10/100", "granting 40/100"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_per_minute_updates_after_a_short_burst() -> None:
    clock = FakeClock()
    budget = ChatUpdateBudget(per_minute=40, burst=3, clock=clock)
    assert [budget.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take() == 1.5  # one every 60/40 s
    taken = 0
    for _ in range(600):  # a minute, every tenth of a second, as many requests ask as can
        clock.now += 0.1
        taken += budget.take() == 0.0
    assert taken == 40


def test_final_updates_never_wait_and_push_progress_back() -> None:
    clock = FakeClock()
    budget = ChatUpdateBudget(per_minute=60, burst=2, clock=clock)
    budget.charge(2)  # two requests' last words: taken at once, whatever progress has used
    budget.charge(2)
    assert budget.take() == 3.0  # two tokens owed: progress waits for three seconds' refill
    clock.now += 3.0
    assert budget.take() == 0.0


class CountingMessenger:
    def __init__(self) -> None:
        self.shown: list[int] = []
        self.store = self

    def get(self, request_id: int) -> Any:
        return SimpleNamespace(id=request_id, state=RequestState.GRANTING)

    def show_progress(self, request: Any, granted: int, failed: int, remaining: int, rate: float) -> None:
        self.shown.append(request.id)


def test_progress_of_many_requests_together_stays_within_the_budget() -> None:
    clock = FakeClock()
    messenger = CountingMessenger()
    observer = SlackGrantObserver(messenger, NoDelivery(), ChatUpdateBudget(per_minute=40, burst=3, clock=clock))  # type: ignore[arg-type]
    for request_id in range(1, 11):  # ten requests running at once, each reporting
        observer.grant_progressed(SimpleNamespace(id=request_id), GrantProgress(1, 0, 99, 50.0))  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while len(messenger.shown) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(messenger.shown) == 3  # the burst; the others wait for the minute's budget
    clock.now += 1.5 * 2  # room for two more
    deadline = time.monotonic() + 5
    while len(messenger.shown) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.6)
    assert len(messenger.shown) == 5
    observer.close()
    assert len(set(messenger.shown)) == 5  # one update each, not several for one request
