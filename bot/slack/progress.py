"""Shows a running grant in Slack: the executor's observer.

Progress updates go out from a thread of their own, never from the thread coordinating the grant: a
rate-limited or slow Slack must not hold up the grant, its outcome writes, or its lease. Updates for one
request never overlap; while one is out, only the newest of those that arrive meanwhile is sent next. An
update is only sent while the request is granting, and one that lands after the grant ended (here or on
another replica) is followed by the round's last words again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from bot.executor import GrantProgress
from bot.requests import GrantRequest, RequestState
from bot.slack.delivery import EventDelivery
from bot.slack.messenger import SlackMessenger

log = logging.getLogger(__name__)


class SlackGrantObserver:
    def __init__(self, messenger: SlackMessenger, delivery: EventDelivery) -> None:
        self.messenger = messenger
        self.delivery = delivery
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
        self.delivery.wake()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _send_newest(self, request_id: int) -> None:
        while True:
            with self._lock:
                progress = self._newest[request_id]
            self._show(request_id, progress)
            with self._lock:
                if self._newest[request_id] is progress:
                    del self._newest[request_id]
                    return

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
