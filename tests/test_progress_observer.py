"""The progress observer: Slack calls off the grant's thread, and never a late "granting…" over the last words."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from bot.executor import GrantProgress
from bot.requests import RequestState
from bot.slack.progress import SlackGrantObserver


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
