"""grant-qual: wiring only. Settings → store → MTurk gateway → executor and service → Bolt app → start.

`python app.py` checks its settings, Slack, MTurk and the database first (bot/selfcheck.py) and stops with the
failing item's line; then it runs Socket Mode when SLACK_APP_TOKEN is set, otherwise serves HTTP on PORT with
Slack's requests at /slack/events, through waitress (a production WSGI server). `python app.py --check` prints
every item of the check and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from dotenv import load_dotenv
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from sqlalchemy.engine import make_url
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from bot.budget import SharedBudget, SqlBudgetStore
from bot.budget_news import PostgresNews
from bot.config import Settings, SettingsError, load_settings
from bot.executor import GrantExecutor
from bot.expiry import GrantExpiry
from bot.logs import configure_logging
from bot.memory import limit_malloc_arenas
from bot.metrics import AppMetrics
from bot.mturk import MTurkGateway, create_mturk_client
from bot.operations import OperationsRoutes, OperationsServer
from bot.pending import PendingSweeper
from bot.policy import AccessPolicy
from bot.preview_runner import PreviewRunner
from bot.ratelimit import AdaptiveRateLimiter
from bot.selfcheck import CheckResult, database_check, mturk_check, run_checks
from bot.service import GrantService
from bot.slack import SlackContext, register
from bot.slack.deadline import AckDeadline
from bot.slack.delivery import EventDelivery
from bot.slack.http_gate import MAX_BODY_BYTES, SlackFormHandler, SlackHttpGate
from bot.slack.messenger import SlackMessenger
from bot.slack.progress import SlackGrantObserver
from bot.slack.selfcheck import CHECK_TIMEOUT_SECONDS, SlackSelfCheck
from bot.slack.usergroups import SlackUserGroups
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
    previews: PreviewRunner
    user_groups: SlackUserGroups
    metrics: AppMetrics = field(default_factory=AppMetrics)
    operations_server: OperationsServer | None = None  # /healthz and /metrics on METRICS_PORT, when set
    expiry: GrantExpiry | None = None  # grants that expire: the sweep, Extend and Revoke now
    budget: SharedBudget | None = None  # the MTurk rate learned, remembered and shared (bot/budget.py)
    # The grant modal's file read and storing, waited for before the ack only so long (bot/slack/deadline.py).
    ack_deadline: AckDeadline = field(default_factory=AckDeadline)

    def wsgi(self) -> OperationsRoutes:
        """/healthz and /metrics (no signature needed), then the Slack gate for everything else."""
        gate = SlackHttpGate(SlackFormHandler(self.bolt, path=EVENTS_PATH), self.settings.slack_signing_secret)
        return OperationsRoutes(self.store.engine, self.metrics, inner=gate)

    def start_background_work(self) -> None:
        """Resume what a previous process left (grants, undelivered events) and keep sweeping for it."""
        self.user_groups.start()
        resumed = self.executor.resume_unfinished()
        if resumed:
            log.info("resuming unfinished grants: %s", resumed)
        if self.budget is not None:
            self.budget.start()
        self.executor.start_recovery_loop()
        self.previews.start_recovery_loop(on_finished=self.delivery.wake)
        self.delivery.start()
        self.sweeper.start()
        if self.expiry is not None:
            self.expiry.start()
        if self.settings.metrics_port is not None:
            self.operations_server = OperationsServer(
                OperationsRoutes(self.store.engine, self.metrics), self.settings.metrics_port
            )
            self.operations_server.start()

    def shutdown(self) -> None:
        """Stop taking work, record calls in flight, then tell Slack what can still be told."""
        self.previews.stop()  # previews in flight end at their next worker; a lapsed lease hands them on
        self.ack_deadline.shutdown()  # first: a late submission's outcome is handed to the after-ack pool
        self.after_ack.shutdown(wait=True)
        self.sweeper.stop()
        if self.expiry is not None:
            self.expiry.stop()
        self.executor.shutdown()
        if self.budget is not None:
            self.budget.stop()
        self.progress.close()
        self.delivery.stop()
        self.user_groups.stop()
        if self.operations_server is not None:
            self.operations_server.stop()


def build(settings: Settings, *, clock: Callable[[], datetime] = now) -> GrantQual:
    store = GrantStore(create_database_engine(settings.database_url))
    store.upgrade_schema()
    pacer = AdaptiveRateLimiter(settings.mturk_max_tps)
    # One budget per MTurk account: start from the rate learned before; with PostgreSQL, share it with replicas.
    shared = store.engine.dialect.name != "sqlite"
    news = PostgresNews(store.engine) if shared else None  # replicas hear of each other's throttles at once
    budget = SharedBudget(pacer, SqlBudgetStore(store.engine), settings.mturk_env.value, shared=shared, news=news)
    budget.start_from_memory()
    gateway = MTurkGateway(create_mturk_client(settings), settings.mturk_env, pacer=pacer)
    metrics = AppMetrics()
    metrics.meter_mturk_calls(gateway.client)
    metrics.watch(store.engine, pacer)
    lease = timedelta(seconds=settings.lease_seconds)
    executor = GrantExecutor(store, gateway, max_concurrency=settings.mturk_max_concurrency, lease=lease)
    client = WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        # No retry on a dropped connection: a post may have landed, and posting again would duplicate it.
        # The event outbox retries instead, reading the thread back first (bot/slack/messenger.py).
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3), ServerErrorRetryHandler(max_retry_count=2)],
    )
    user_groups = SlackUserGroups(client, settings.user_groups)
    policy = AccessPolicy(
        settings.requesters,
        settings.approvers,
        settings.allow_self_approval,
        user_groups,
        approvals_required=settings.approvals_required,
        production_approvals_required=settings.production_approvals_required,
    )
    previews = PreviewRunner(store, gateway, concurrency=settings.mturk_max_concurrency, lease=lease)
    service = GrantService(store, gateway, executor, policy, previews)
    bolt = App(
        client=client,
        # The self-check has called auth.test already; Bolt's own call at construction would raise on a network
        # error with a traceback. Bolt calls it once at the first request instead.
        token_verification_enabled=False,
        signing_secret=settings.slack_signing_secret,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="listener"),
    )
    messenger = SlackMessenger(bolt.client, store, settings.approval_channel)
    delivery = EventDelivery(store, messenger)
    progress = executor.observer = SlackGrantObserver(messenger, delivery)
    after_ack = ThreadPoolExecutor(max_workers=8, thread_name_prefix="after-ack")
    ack_deadline = AckDeadline()
    notice = timedelta(hours=settings.expiry_notice_hours) if settings.expiry_notice_hours else None
    expiry = GrantExpiry(store, executor, policy, notice_before=notice, clock=clock, on_change=delivery.wake)
    context = SlackContext(
        service,
        messenger,
        delivery,
        settings.max_workers_per_request,
        after_ack,
        expiry,
        reject_reason_required=settings.reject_reason_required,
        ack_deadline=ack_deadline,
    )
    register(bolt, context)
    user_groups.listen(bolt)
    remind_after = timedelta(hours=settings.remind_after_hours) if settings.remind_after_hours else None
    ttl = timedelta(hours=settings.request_ttl_hours)
    sweeper = PendingSweeper(store, ttl=ttl, remind_after=remind_after, clock=clock, on_change=delivery.wake)
    return GrantQual(
        settings,
        bolt,
        store,
        executor,
        service,
        messenger,
        delivery,
        progress,
        after_ack,
        sweeper,
        previews,
        user_groups,
        metrics,
        expiry=expiry,
        budget=budget,
        ack_deadline=ack_deadline,
    )


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


def self_check(settings: Settings, *, stop_at_failure: bool = False) -> list[CheckResult]:
    """Slack, MTurk and the database, each one line; quick timeouts, no retries, nothing created."""
    store = GrantStore(create_database_engine(settings.database_url))
    client = create_mturk_client(settings, read_timeout=CHECK_TIMEOUT_SECONDS)
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    checks = [
        *SlackSelfCheck(settings).checks(),
        mturk_check(MTurkGateway(client, settings.mturk_env)),
        database_check(store, database),
    ]
    try:
        return run_checks(checks, stop_at_failure=stop_at_failure)
    finally:
        store.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="grant-qual: grant MTurk qualifications from Slack.")
    parser.add_argument("--check", action="store_true", help="check settings, Slack, MTurk and the database; exit")
    check_only = parser.parse_args(argv).check
    limit_malloc_arenas()  # before any thread: see bot/memory.py
    # The README's promise: a .env in the working directory is read; what the environment already holds wins.
    dotenv = Path.cwd() / ".env"
    load_dotenv(dotenv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        return _report([CheckResult("Settings", False, str(error))], check_only)
    configure_logging(settings.secrets(), log_format=settings.log_format)
    # Settings hold the Slack secrets from here on. Bolt would read SLACK_BOT_TOKEN again by itself and warn
    # that the token of the client it is given wins.
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        os.environ.pop(name, None)
    read = f"read {dotenv}" if dotenv.is_file() else f"no .env in {dotenv.parent}"
    results = [
        CheckResult("Settings", True, f"{describe(settings)}; {read}"),
        *self_check(settings, stop_at_failure=not check_only),
    ]
    if check_only or not all(result.ok for result in results):
        return _report(results, check_only)
    return serve(settings)


def _report(results: list[CheckResult], check_only: bool) -> int:
    """--check prints every line and exits 1 on any ✗; a start stops with the failing line and exits 2."""
    if check_only:
        for result in results:
            print(result.line())
        return 0 if all(result.ok for result in results) else 1
    failed = next(result for result in results if not result.ok)
    print(f"grant-qual cannot start: {failed.line()}", file=sys.stderr)
    return 2


def serve(settings: Settings) -> int:
    """Build the app (creating or upgrading the database) and serve until SIGTERM or Ctrl-C."""
    grant_qual = build(settings)
    log.info("grant-qual starting: %s", describe(settings))
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    grant_qual.start_background_work()
    try:
        if settings.socket_mode:
            return serve_socket_mode(grant_qual)
        http_server(grant_qual).run()
    except KeyboardInterrupt:
        log.info("stopping: finishing calls in flight")
    finally:
        grant_qual.shutdown()
        log.info("stopped")
    return 0


def serve_socket_mode(grant_qual: GrantQual) -> int:
    """Connect to Slack over Socket Mode and keep the connection until SIGTERM or Ctrl-C."""
    from bot.slack.socket_mode import TimedSocketModeHandler

    handler = TimedSocketModeHandler(grant_qual.bolt, grant_qual.settings.slack_app_token, metrics=grant_qual.metrics)
    try:
        handler.connect()
    except (SlackClientError, OSError) as error:
        # The self-check was let in a moment ago; Slack or the network changed since. One line, no traceback.
        handler.close()
        reason = error.response.get("error") if isinstance(error, SlackApiError) else type(error).__name__
        print(f"grant-qual cannot start: Slack refused the Socket Mode connection ({reason})", file=sys.stderr)
        return 2
    log.info("connected to Slack over Socket Mode")
    try:
        threading.Event().wait()  # the watchdog keeps the connection; this thread only waits for the signal
    finally:
        handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
