"""Each slash command and each form submission is taken once, however many copies of it arrive.

Slack signs a request once: a captured copy can be replayed byte for byte within the signature's five
minutes, Slack retries over HTTP (X-Slack-Retry-Num, re-signed with a new timestamp), and Socket Mode
re-delivers an envelope it saw no acknowledgement for. Every copy carries the same trigger_id, so the first
copy to store that key in the database (shared by the replicas, kept across restarts) is taken, and every
other copy is acknowledged and does nothing: no second request, no second answer, no second form.

Button clicks need no key: every decision is already a compare-and-swap on the request's state.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.store import GrantStore

log = logging.getLogger(__name__)
_MAX_TRIGGER_ID_CHARS = 100


def register(app: App, store: GrantStore) -> None:
    app.use(TakeEachDeliveryOnce(store))


class TakeEachDeliveryOnce(Middleware):
    """Bolt middleware, for both transports. A class, not a function: Bolt builds a function middleware's
    arguments from the body first, which raises on some signed payloads (a click without actions)."""

    def __init__(self, store: GrantStore) -> None:
        self.store = store

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        kind = delivery_kind(req.body)
        if kind is None or self.store.take_delivery(delivery_key(req.body), kind):
            return next()
        log.info("a repeated %s was acknowledged and ignored", kind)
        return BoltResponse(status=200, body="")


def delivery_kind(body: dict[str, Any]) -> str | None:
    """The kind of a delivery taken only once, or None for those that need no key (clicks, events)."""
    if body.get("command"):
        return "command"
    if body.get("type") == "view_submission":
        return "view_submission"
    return None


def delivery_key(body: dict[str, Any]) -> str:
    """The trigger_id, which Slack makes for each command and each submission (a modal resubmitted after
    inline errors gets a new one); without one, a digest of the whole payload, the same in every copy."""
    trigger_id = body.get("trigger_id")
    if isinstance(trigger_id, str) and 0 < len(trigger_id) <= _MAX_TRIGGER_ID_CHARS:
        return trigger_id
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
