"""Look-ups: where a request stands, every request that touched a worker, a user's own requests and those
waiting for a decision. Read-only answers from the record in the database; nothing here knows Slack.

Only the people who may request or approve grants may look things up (AccessPolicy.lookup_refusal). Every
answer is bounded: the newest (or, for requests waiting for a decision, the oldest) few, and how many more
there are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.policy import AccessPolicy
from bot.requests import INT32_MAX, GrantRequest, WorkerOutcome, WorkerStatus
from bot.service import NotAllowed
from bot.store import GrantStore

RECENT_REQUESTS_SHOWN = 10
PENDING_REQUESTS_SHOWN = 20
WORKER_HISTORY_SHOWN = 20


@dataclass(frozen=True)
class RequestStatus:
    """A request and how many of its workers are granted, failed and still pending."""

    request: GrantRequest
    counts: Mapping[WorkerStatus, int]

    @property
    def granted(self) -> int:
        return self.counts.get(WorkerStatus.GRANTED, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(WorkerStatus.FAILED, 0)

    @property
    def pending(self) -> int:
        return self.counts.get(WorkerStatus.PENDING, 0)


@dataclass(frozen=True)
class RequestList:
    """The requests shown, and how many more there are beyond them."""

    statuses: tuple[RequestStatus, ...]
    total: int

    @property
    def left_out(self) -> int:
        return self.total - len(self.statuses)


@dataclass(frozen=True)
class WorkerHistoryEntry:
    """One request that named the worker, and what it did for them."""

    request: GrantRequest
    outcome: WorkerOutcome


@dataclass(frozen=True)
class WorkerHistory:
    """Every request that named a worker, newest first (the newest WORKER_HISTORY_SHOWN), and how many in all."""

    worker_id: str
    entries: tuple[WorkerHistoryEntry, ...]
    total: int

    @property
    def older(self) -> int:
        return self.total - len(self.entries)


@dataclass(frozen=True)
class MyRequests:
    """A user's recent requests, newest first; for an approver also the requests waiting for a decision,
    oldest first (None for someone who cannot decide)."""

    user_id: str
    recent: RequestList
    waiting: RequestList | None


class Lookups:
    """The look-up use cases, each checking first that the user may look things up."""

    def __init__(self, store: GrantStore, policy: AccessPolicy) -> None:
        self.store = store
        self.policy = policy

    def ensure_may_look_up(self, user_id: str) -> None:
        if refusal := self.policy.lookup_refusal(user_id):
            raise NotAllowed(refusal)

    def status(self, user_id: str, request_id: int) -> RequestStatus | None:
        """Where request `request_id` stands; None if there is no such request."""
        self.ensure_may_look_up(user_id)
        if not 1 <= request_id <= INT32_MAX:  # no such ID can be stored; PostgreSQL would refuse the query
            return None
        request = self.store.get(request_id)
        if request is None:
            return None
        return RequestStatus(request, self.store.status_counts(request_id))

    def history(self, user_id: str, worker_id: str) -> WorkerHistory:
        self.ensure_may_look_up(user_id)
        found, total = self.store.worker_history(worker_id, WORKER_HISTORY_SHOWN)
        entries = tuple(WorkerHistoryEntry(request, outcome) for request, outcome in found)
        return WorkerHistory(worker_id, entries, total)

    def mine(self, user_id: str) -> MyRequests:
        self.ensure_may_look_up(user_id)
        recent = self._with_counts(*self.store.requests_by_requester(user_id, RECENT_REQUESTS_SHOWN))
        waiting = None
        if self.policy.is_approver(user_id):
            waiting = self._with_counts(*self.store.pending_requests(PENDING_REQUESTS_SHOWN))
        return MyRequests(user_id, recent, waiting)

    def _with_counts(self, requests: Sequence[GrantRequest], total: int) -> RequestList:
        counts = self.store.status_counts_of([r.id for r in requests]) if requests else {}
        return RequestList(tuple(RequestStatus(r, counts[r.id]) for r in requests), total)
