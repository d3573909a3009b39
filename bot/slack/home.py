"""The App Home: the Home tab (published on app_home_opened and again when what it shows changes) and the
Messages tab (a DM to the app gets a short help, once per message).

Who opened their Home is kept in memory: after a restart a user's Home is refreshed again from their next open.
Refreshes after request events are debounced (one views.publish per user per `debounce` seconds at most), well
within views.publish's Tier 4 limit.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.home import AppHome, BalanceCache
from bot.requests import GrantRequest, RequestEvent
from bot.service import NotAllowed
from bot.slack import blocks, home_blocks, shortcut_blocks

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)

REFRESH_DEBOUNCE_SECONDS = 1.0


def register(app: App, context: SlackContext) -> HomeTabs:
    service = context.service
    tabs = HomeTabs(context, AppHome(service.store, service.policy, BalanceCache(service.gateway)))
    context.delivery.on_delivered = tabs.request_changed
    env = service.gateway.environment

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            tabs.opened_by(str(event["user"]))

    @app.action(home_blocks.NEW_REQUEST_ACTION)
    def new_request(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = str((body.get("user") or {}).get("id", ""))
        try:
            service.ensure_may_request(user_id)
            view = blocks.grant_modal(env, {})
        except NotAllowed as refusal:
            view = shortcut_blocks.notice_modal(f":no_entry: {refusal}")
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.event("message")
    def direct_message(event: dict[str, Any], client: WebClient) -> None:
        # Only a person's own new message in their DM with the app; not edits, joins, or the app's own posts.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        if not channel or not ts or not service.store.take_delivery(f"dm:{channel}:{ts}", "dm_help"):
            return  # Slack's retry of an event already answered
        client.chat_postMessage(channel=channel, text=home_blocks.dm_help(env))

    return tabs


class HomeTabs:
    """Publishes users' Home tabs: on open at once, after a request changes for those who see it, debounced."""

    def __init__(self, context: SlackContext, home: AppHome, debounce: float = REFRESH_DEBOUNCE_SECONDS) -> None:
        self.context = context
        self.home = home
        self.debounce = debounce
        self._lock = threading.Lock()
        self._opened: set[str] = set()
        self._due: set[str] = set()
        self._timer: threading.Timer | None = None
        self._links: dict[tuple[str, str], str] = {}  # a message's permalink never changes

    def opened_by(self, user_id: str) -> None:
        with self._lock:
            self._opened.add(user_id)
        self.publish(user_id)

    def request_changed(self, event: RequestEvent) -> None:
        """After an event is told in Slack: refresh the Home of its requester and of approvers, if opened."""
        request = self.context.service.store.get(event.request_id)
        if request is None:
            return
        policy = self.context.service.policy
        with self._lock:
            seeing = {u for u in self._opened if u == request.requester_id or policy.is_approver(u)}
            if not seeing:
                return
            self._due |= seeing
            if self._timer is None:
                self._timer = threading.Timer(self.debounce, self._refresh_due)
                self._timer.daemon = True
                self._timer.start()

    def _refresh_due(self) -> None:
        with self._lock:
            due, self._due, self._timer = self._due, set(), None
        for user_id in sorted(due):
            self.publish(user_id)

    def publish(self, user_id: str) -> None:
        try:
            page = self.home.page(user_id)
            shown = [s.request for s in page.requests.recent.statuses] if page.requests else []
            if page.requests and page.requests.waiting:
                shown += [s.request for s in page.requests.waiting.statuses]
            links = {request.id: self._link(request) for request in shown}
            view = home_blocks.home_view(page, self.context.service.gateway.environment, links)
            self.context.messenger.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as error:
            log.warning("could not publish a Home tab: %s", error.response.get("error"))
        except OSError as error:  # Slack unreachable: the next change or open publishes it again
            log.warning("could not publish a Home tab: Slack unreachable (%s)", type(error).__name__)
        except Exception:
            log.exception("could not publish a Home tab")

    def _link(self, request: GrantRequest) -> str | None:
        if not request.channel_id or not request.message_ts:
            return None
        key = (request.channel_id, request.message_ts)
        if key not in self._links:
            link = self.context.messenger.permalink(request)
            if link is None:
                return None
            self._links[key] = link
        return self._links[key]
