"""The app's Prometheus metrics (one registry per app) and the database health check.

Counted as they happen: MTurk HTTP calls by outcome (from botocore's events on the gateway's client, so every
attempt counts, retries included), the calls in flight, and the time from a Slack request's arrival to its
acknowledgement. Read at scrape time: requests by state and the outbox's depth (one GROUP BY or COUNT each,
shared by every replica on the database), the pacer's current rate and its throttles (this process's).

Labels are only `state`, `outcome` and `kind`, from fixed sets: never a worker ID, a Slack user or a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from botocore.client import BaseClient
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.ratelimit import AdaptiveRateLimiter
from bot.requests import DeliveryState, RequestState
from bot.store import grant_requests, request_events

log = logging.getLogger(__name__)

PREFIX = "grant_qual"
# Slack retries a request it has no answer for after 3 s; the buckets resolve the range up to there.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
# The MTurk operations that change a worker; every other one reads.
_CHANGING_OPERATIONS = {"AssociateQualificationWithWorker": "grant", "DisassociateQualificationFromWorker": "revoke"}
_UNDELIVERED = (DeliveryState.PENDING.value, DeliveryState.SENDING.value)


class AppMetrics:
    """The registry /metrics serves and the metrics the app updates as it runs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.mturk_calls = Counter(
            f"{PREFIX}_mturk_calls",
            "MTurk HTTP calls (every attempt) by kind (grant, revoke, read) and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.mturk_in_flight = Gauge(
            f"{PREFIX}_mturk_calls_in_flight", "MTurk HTTP calls sent and not yet answered", registry=self.registry
        )
        self.ack_seconds = Histogram(
            f"{PREFIX}_slack_ack_seconds",
            "Time from a Slack request's arrival to its acknowledgement, by kind (http, socket_mode)",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )

    def watch(self, engine: Engine, pacer: AdaptiveRateLimiter | None) -> None:
        """Report the database's requests and outbox, and the pacer's rate and throttles, at every scrape."""
        self.registry.register(StateCollector(engine, pacer))

    def meter_mturk_calls(self, client: BaseClient) -> None:
        """Count every HTTP attempt the client makes to MTurk, and the ones in flight, by botocore's events."""
        events = client.meta.events
        events.register("before-send.mturk", self._call_sent)
        events.register("needs-retry.mturk", self._call_answered)

    def _call_sent(self, **_: Any) -> None:
        self.mturk_in_flight.inc()

    def _call_answered(
        self, event_name: str = "", response: Any = None, caught_exception: Exception | None = None, **_: Any
    ) -> None:
        self.mturk_in_flight.dec()
        operation = event_name.rsplit(".", 1)[-1]
        kind = _CHANGING_OPERATIONS.get(operation, "read")
        self.mturk_calls.labels(kind=kind, outcome=call_outcome(response, caught_exception)).inc()

    def observe_ack(self, kind: str, started: float) -> None:
        self.ack_seconds.labels(kind=kind).observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def call_outcome(response: Any, caught_exception: Exception | None) -> str:
    """ok, throttled, refused (MTurk's 4xx: the caller's mistake), fault (5xx), or no_answer (no HTTP answer)."""
    if caught_exception is not None or not response:
        return "no_answer"
    http_response, parsed = response
    status = http_response.status_code
    if status == 200:
        return "ok"
    code = str((parsed or {}).get("Error", {}).get("Code", ""))
    if "Throttl" in code or "TooManyRequests" in code:
        return "throttled"
    return "refused" if status < 500 else "fault"


class StateCollector(Collector):
    """What the database and the pacer hold, read when Prometheus scrapes."""

    def __init__(self, engine: Engine, pacer: AdaptiveRateLimiter | None) -> None:
        self._engine = engine
        self._pacer = pacer

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        if self._pacer is not None:
            rate = GaugeMetricFamily(f"{PREFIX}_mturk_rate_limit", "The pacer's current MTurk calls per second")
            rate.add_metric([], self._pacer.rate)
            yield rate
            throttles = CounterMetricFamily(f"{PREFIX}_mturk_throttles", "MTurk throttling answers to this process")
            throttles.add_metric([], self._pacer.throttles)
            yield throttles
        try:
            by_state, outbox = self._read_database()
        except SQLAlchemyError as error:
            log.warning("metrics: the database did not answer (%s)", type(error).__name__)
            return
        requests = GaugeMetricFamily(f"{PREFIX}_requests", "Grant requests in the database by state", labels=["state"])
        for state, count in sorted(by_state.items()):
            requests.add_metric([state], count)
        yield requests
        depth = GaugeMetricFamily(f"{PREFIX}_outbox_depth", "Events Slack has not been told about yet (all replicas)")
        depth.add_metric([], outbox)
        yield depth

    def _read_database(self) -> tuple[dict[str, int], int]:
        by_state = {state.value: 0 for state in RequestState}
        with self._engine.connect() as conn:
            rows = conn.execute(select(grant_requests.c.state, func.count()).group_by(grant_requests.c.state))
            by_state.update({str(state): int(count) for state, count in rows})
            undelivered = request_events.c.delivery_state.in_(_UNDELIVERED)
            outbox = conn.execute(select(func.count()).select_from(request_events).where(undelivered)).scalar_one()
        return by_state, int(outbox)


def database_answers(engine: Engine) -> bool:
    """Whether the database answers `SELECT 1` now."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        log.warning("health: the database did not answer (%s)", type(error).__name__)
        return False
    return True
