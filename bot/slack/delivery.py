"""Delivers request events to Slack from the database outbox, so no outcome lives only in a Slack message.

A delivery is claimed with a lease (one replica at a time), retried with backoff while Slack is down or
rate-limits (after slack_sdk's own retry handlers), and resumed by any replica after a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot.logs import log_context
from bot.requests import DeliveryState, EventKind, RequestEvent
from bot.slack.messenger import SlackMessenger
from bot.store import GrantStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 200
MAX_BACKOFF = timedelta(seconds=60)
# Slack errors that retrying cannot fix; everything else (outages, rate limits, lost answers) is retried.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "not_authed",
    }
)


class EventDelivery:
    def __init__(
        self,
        store: GrantStore,
        messenger: SlackMessenger,
        *,
        lease: timedelta = timedelta(seconds=30),
        poll_interval: float = 1.0,
        pool_size: int = 2,
    ) -> None:
        self.store = store
        self.messenger = messenger
        self._lease = lease
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Few threads, so posting to Slack never crowds out acks on a small machine; they rarely wait on
        # each other because each takes the next due event as soon as it is free.
        self._pool_size = pool_size
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="slack-delivery")
        self._in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()
        # Called after an event is told in Slack (e.g. to refresh the Home tabs that show its request).
        self.on_delivered: Callable[[RequestEvent], None] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="slack-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    def deliver_due(self) -> None:
        """Hand due events to the pool, keeping it busy: one slow or rate-limited post holds up no other."""
        with self._in_flight_lock:
            room = 2 * self._pool_size - len(self._in_flight)
            if room <= 0:
                return
            due = [i for i in self.store.due_event_ids(limit=room + len(self._in_flight)) if i not in self._in_flight]
            for event_id in due[:room]:
                self._in_flight.add(event_id)
                self._pool.submit(self._deliver_and_look_again, event_id)

    def _deliver_and_look_again(self, event_id: int) -> None:
        try:
            self.deliver(event_id)
        except Exception:
            log.exception("delivering event %s to Slack failed; will try again", event_id)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(event_id)
            self._wake.set()  # the request's next event, or another request's, may be due now

    def deliver_submission(self, request_id: int) -> bool:
        """Post a new request now, from the requester's own listener thread; False if it is left queued."""
        for event in self.store.events(request_id):
            if event.kind is EventKind.SUBMITTED:
                self.deliver(event.id)
                current = self.store.event(event.id)
                return current is not None and current.delivery_state is DeliveryState.DELIVERED
        return False

    def deliver(self, event_id: int) -> None:
        if self._stopping.is_set():
            return
        event = self.store.claim_event(event_id, lease=self._lease)
        if event is None:
            return
        try:
            self.messenger.tell(event)
        except SlackApiError as error:
            code = str(error.response.get("error") or error.response.status_code)
            if code in PERMANENT_ERRORS or event.attempts >= MAX_ATTEMPTS:
                log.error(
                    "giving up telling Slack about event %s (%s) of request #%s: %s",
                    event.id,
                    event.kind,
                    event.request_id,
                    code,
                    extra=log_context(request_id=event.request_id, event="delivery_failed"),
                )
                self.store.event_failed(event.id, code)
            else:
                self._retry_later(event.id, event.attempts, code)
        except Exception as error:  # connection refused, reset or timed out: Slack is unreachable
            log.warning(
                "Slack unreachable for event %s of request #%s: %s",
                event.id,
                event.request_id,
                type(error).__name__,
                extra=log_context(request_id=event.request_id, event="delivery_retry"),
            )
            self._retry_later(event.id, event.attempts, type(error).__name__)
        else:
            self.store.event_delivered(event.id)
            if self.on_delivered is not None:
                try:
                    self.on_delivered(event)
                except Exception:
                    log.exception("after delivering event %s", event.id)

    def _retry_later(self, event_id: int, attempts: int, error: str) -> None:
        delay = min(MAX_BACKOFF, timedelta(seconds=0.5 * 2 ** min(attempts, 8)))
        self.store.event_retry_later(event_id, error, delay)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._poll_interval)
            self._wake.clear()
            try:
                self.deliver_due()
            except Exception:
                log.exception("delivering events to Slack failed; will try again")
