"""Delivers request events to Slack from the database outbox, so no outcome lives only in a Slack message.

A delivery is claimed with a lease (one replica at a time), retried with backoff while Slack is down or
rate-limits (after slack_sdk's own retry handlers), and resumed by any replica after a crash.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot.requests import DeliveryState, EventKind
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
    ) -> None:
        self.store = store
        self.messenger = messenger
        self._lease = lease
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="slack-delivery")

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
        """Deliver every due event, a few at a time: one slow or rate-limited request does not hold up others."""
        futures = [self._pool.submit(self.deliver, event_id) for event_id in self.store.due_event_ids()]
        for future in futures:
            future.result()

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
                )
                self.store.event_failed(event.id, code)
            else:
                self._retry_later(event.id, event.attempts, code)
        except Exception as error:  # connection refused, reset or timed out: Slack is unreachable
            log.warning(
                "Slack unreachable for event %s of request #%s: %s", event.id, event.request_id, type(error).__name__
            )
            self._retry_later(event.id, event.attempts, type(error).__name__)
        else:
            self.store.event_delivered(event.id)

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
