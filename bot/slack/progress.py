"""Shows a running grant in Slack: the executor's observer.

Progress updates go out from a thread of their own, never from the thread coordinating the grant: a
rate-limited or slow Slack must not hold up the grant, its outcome writes, or its lease. Updates for one
request never overlap; while one is out, only the newest of those that arrive meanwhile is sent next. An
update is only sent while the request is granting, and one that lands after the grant ended (here or on
another replica) is followed by the round's last words again. All requests' progress updates together stay
within the app's share of Slack's `chat.update` rate (bot/slack/update_budget.py); a request's final
updates are charged to it without waiting, so they never queue behind progress.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from bot.executor import GrantProgress
from bot.requests import GrantRequest, RequestState
from bot.slack.delivery import EventDelivery
from bot.slack.messenger import SlackMessenger
from bot.slack.update_budget import ChatUpdateBudget

log = logging.getLogger(__name__)

# chat.update calls for a request's last words: its status line, and its progress message's final counts.
FINAL_UPDATES = 2


class SlackGrantObserver:
    def __init__(
        self, messenger: SlackMessenger, delivery: EventDelivery, budget: ChatUpdateBudget | None = None
    ) -> None:
        self.messenger = messenger
        self.delivery = delivery
        self.budget = budget or ChatUpdateBudget()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._newest: dict[int, GrantProgress] = {}  # requests with an update out, and the newest to send
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="slack-progress")

    def grant_progressed(self, request: GrantRequest, progress: GrantProgress) -> None:
        """Best effort: a missed progress update is replaced by the next one or by the final result."""
        with self._lock:
            sending = request.id in self._newest
            self._newest[request.id] = progress
        if not sending:
            self._pool.submit(self._send_newest, request.id)

    def grant_finished(self, request: GrantRequest) -> None:
        self.budget.charge(FINAL_UPDATES)
        self.delivery.wake()

    def close(self) -> None:
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _send_newest(self, request_id: int) -> None:
        while True:
            if not self._wait_for_budget():
                with self._lock:
                    del self._newest[request_id]
                return
            with self._lock:
                progress = self._newest[request_id]
            self._show(request_id, progress)
            with self._lock:
                if self._newest[request_id] is progress:
                    del self._newest[request_id]
                    return

    def _wait_for_budget(self) -> bool:
        """Wait for a token (the newest progress is read after); False when closing."""
        while (due := self.budget.take()) > 0:
            if self._closing.wait(min(due, 0.5)):
                return False
        return True

    def _show(self, request_id: int, progress: GrantProgress) -> None:
        current = self.messenger.store.get(request_id)
        if current is None or current.state is not RequestState.GRANTING:
            return  # finished meanwhile (perhaps on another replica): the final words are already due
        try:
            self.messenger.show_progress(
                current, progress.granted, progress.failed, progress.remaining, progress.calls_per_second
            )
            after = self.messenger.store.get(request_id)
            if after is not None and after.state is not RequestState.GRANTING:
                # It ended while this update was out (its last words may be shown by another replica
                # already): put them back, so a late "granting…" never stays on the message.
                self.messenger.show_recorded_progress(after)
        except Exception as error:
            log.warning("progress update for request #%s failed: %s", request_id, type(error).__name__)
