"""grant-qual: wiring only. Settings → store → MTurk gateway → executor and service → Bolt app → start.

`python app.py` runs Socket Mode when SLACK_APP_TOKEN is set, otherwise serves HTTP on PORT with Slack's
requests at /slack/events, through waitress (a production WSGI server).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType

from dotenv import load_dotenv
from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from sqlalchemy.engine import make_url
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from bot.config import Settings, SettingsError, load_settings
from bot.executor import GrantExecutor
from bot.logs import configure_logging
from bot.mturk import MTurkGateway, create_mturk_client
from bot.pending import PendingSweeper
from bot.policy import AccessPolicy
from bot.ratelimit import AdaptiveRateLimiter
from bot.service import GrantService
from bot.slack import SlackContext, register
from bot.slack.delivery import EventDelivery
from bot.slack.http_gate import MAX_BODY_BYTES, SlackFormHandler, SlackHttpGate
from bot.slack.messenger import SlackMessenger
from bot.slack.progress import SlackGrantObserver
from bot.store import GrantStore, create_database_engine, now

log = logging.getLogger("grant-qual")
EVENTS_PATH = "/slack/events"


@dataclass
class GrantQual:
    """The assembled application: everything `python app.py` and the tests start."""

    settings: Settings
    bolt: App
    store: GrantStore
    executor: GrantExecutor
    service: GrantService
    messenger: SlackMessenger
    delivery: EventDelivery
    progress: SlackGrantObserver
    after_ack: ThreadPoolExecutor
    sweeper: PendingSweeper

    def wsgi(self) -> SlackHttpGate:
        return SlackHttpGate(SlackFormHandler(self.bolt, path=EVENTS_PATH), self.settings.slack_signing_secret)

    def start_background_work(self) -> None:
        """Resume what a previous process left (grants, undelivered events) and keep sweeping for it."""
        resumed = self.executor.resume_unfinished()
        if resumed:
            log.info("resuming unfinished grants: %s", resumed)
        self.executor.start_recovery_loop()
        self.delivery.start()
        self.sweeper.start()

    def shutdown(self) -> None:
        """Stop taking work, record calls in flight, then tell Slack what can still be told."""
        self.after_ack.shutdown(wait=True)
        self.sweeper.stop()
        self.executor.shutdown()
        self.progress.close()
        self.delivery.stop()


def build(settings: Settings, *, clock: Callable[[], datetime] = now) -> GrantQual:
    store = GrantStore(create_database_engine(settings.database_url))
    store.upgrade_schema()
    pacer = AdaptiveRateLimiter(settings.mturk_max_tps)
    gateway = MTurkGateway(create_mturk_client(settings), settings.mturk_env, pacer=pacer)
    lease = timedelta(seconds=settings.lease_seconds)
    executor = GrantExecutor(store, gateway, max_concurrency=settings.mturk_max_concurrency, lease=lease)
    policy = AccessPolicy(settings.requesters, settings.approvers, settings.allow_self_approval)
    service = GrantService(store, gateway, executor, policy)
    client = WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        # No retry on a dropped connection: a post may have landed, and posting again would duplicate it.
        # The event outbox retries instead, reading the thread back first (bot/slack/messenger.py).
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3), ServerErrorRetryHandler(max_retry_count=2)],
    )
    bolt = App(
        client=client,
        signing_secret=settings.slack_signing_secret,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="listener"),
    )
    messenger = SlackMessenger(bolt.client, store, settings.approval_channel)
    delivery = EventDelivery(store, messenger)
    progress = executor.observer = SlackGrantObserver(messenger, delivery)
    after_ack = ThreadPoolExecutor(max_workers=8, thread_name_prefix="after-ack")
    register(bolt, SlackContext(service, messenger, delivery, settings.max_workers_per_request, after_ack))
    remind_after = timedelta(hours=settings.remind_after_hours) if settings.remind_after_hours else None
    ttl = timedelta(hours=settings.request_ttl_hours)
    sweeper = PendingSweeper(store, ttl=ttl, remind_after=remind_after, clock=clock, on_change=delivery.wake)
    return GrantQual(settings, bolt, store, executor, service, messenger, delivery, progress, after_ack, sweeper)


def http_server(
    grant_qual: GrantQual, host: str = "0.0.0.0", port: int | None = None
) -> BaseWSGIServer | MultiSocketServer:
    return create_server(
        grant_qual.wsgi(),
        host=host,
        port=grant_qual.settings.port if port is None else port,
        threads=32,
        ident="grant-qual",
        # Belt and braces: waitress refuses a larger body itself (413) before buffering it; the margin is
        # for chunked framing, which waitress counts too. The gate holds the exact cap.
        max_request_body_size=MAX_BODY_BYTES + 64 * 1024,
    )


def describe(settings: Settings) -> str:
    override = f", set by {settings.mturk_endpoint_setting}" if settings.mturk_endpoint_setting else ""
    endpoint = f"{settings.mturk_endpoint_url}{override}"
    mode = "Socket Mode" if settings.socket_mode else f"HTTP on port {settings.port} at {EVENTS_PATH}"
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    return f"MTurk {settings.mturk_env.label} ({endpoint}); Slack {mode}; database {database}"


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    load_dotenv()
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"grant-qual cannot start: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.secrets())
    try:
        grant_qual = build(settings)
    except BoltError as error:
        print(f"grant-qual cannot start: Slack refused SLACK_BOT_TOKEN ({error})", file=sys.stderr)
        return 2
    log.info("grant-qual starting: %s", describe(settings))
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    grant_qual.start_background_work()
    try:
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            SocketModeHandler(grant_qual.bolt, settings.slack_app_token).start()
        else:
            http_server(grant_qual).run()
    except KeyboardInterrupt:
        log.info("stopping: finishing calls in flight")
    finally:
        grant_qual.shutdown()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
