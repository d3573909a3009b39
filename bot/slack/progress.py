"""Shows a running grant in Slack: the executor's observer."""

from __future__ import annotations

import logging

from bot.executor import GrantProgress
from bot.requests import GrantRequest
from bot.slack.delivery import EventDelivery
from bot.slack.messenger import SlackMessenger

log = logging.getLogger(__name__)


class SlackGrantObserver:
    def __init__(self, messenger: SlackMessenger, delivery: EventDelivery) -> None:
        self.messenger = messenger
        self.delivery = delivery

    def grant_progressed(self, request: GrantRequest, progress: GrantProgress) -> None:
        """Best effort: a missed progress update is replaced by the next one or by the final result."""
        current = self.messenger.store.get(request.id) or request
        try:
            self.messenger.show_progress(
                current, progress.granted, progress.failed, progress.remaining, progress.calls_per_second
            )
        except Exception as error:
            log.warning("progress update for request #%s failed: %s", request.id, type(error).__name__)

    def grant_finished(self, request: GrantRequest) -> None:
        self.delivery.wake()
