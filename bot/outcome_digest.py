"""What a request's messages say about its workers' outcomes, in a size that does not grow with the request.

The approval message and a round's summary show counts, the distinct scores, a few worker IDs and the failures
grouped by reason; every worker's outcome is in the CSV files. An OutcomeDigest holds exactly that much: the
counts per operation and status, the first WORKERS_KEPT IDs of each list a message shows, the largest
FAILURE_GROUPS_KEPT failure groups with their first IDS_KEPT_PER_FAILURE workers, and the distinct scores (all of
them while there are at most SCORES_KEPT, else only how many and their range). The store computes it in SQL
(bot/outcome_digest_store.py); `OutcomeDigest.of` computes the same from outcomes in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.requests import Operation, WorkerOutcome, WorkerStatus

WORKERS_KEPT = 40
SCORES_KEPT = 10
FAILURE_GROUPS_KEPT = 8
IDS_KEPT_PER_FAILURE = 5

# MTurk appends a request id in parentheses ("... (1631094715163)") and quotes the worker ID in some
# messages; neither belongs in a reason shared by many workers. PostgreSQL applies the same patterns.
REQUEST_ID_SUFFIX = r"\s*\(\d{10,}\)\s*$"
QUOTED_WORKER = r'"A[A-Z0-9]+"'
QUOTED_WORKER_SHOWN = '"…"'
_REQUEST_ID_SUFFIX = re.compile(REQUEST_ID_SUFFIX)
_QUOTED_WORKER = re.compile(QUOTED_WORKER)


def shared_message(error_message: str) -> str:
    """MTurk's message without what differs from one worker or call to the next."""
    return _QUOTED_WORKER.sub(QUOTED_WORKER_SHOWN, _REQUEST_ID_SUFFIX.sub("", error_message))


def failure_reason(outcome: WorkerOutcome) -> tuple[str, str, str | None]:
    """The reason a worker failed, as failures are grouped: (code, message, hint)."""
    message = shared_message(outcome.error_message or "")
    return outcome.error_code or "Unknown", message or outcome.error_code or "unknown error", outcome.hint


def _score(value: int | None) -> int:
    return 1 if value is None else value


@dataclass(frozen=True)
class Scores:
    """The distinct scores some workers get. A worker without a score of its own (None) gets MTurk's default, 1,
    and counts as 1; `values` keeps None apart, so "MTurk's default" can still be said."""

    count: int = 0  # distinct scores
    lowest: int | None = None
    highest: int | None = None
    values: frozenset[int | None] = frozenset()  # the distinct values as stored, when count <= SCORES_KEPT

    @classmethod
    def of(cls, values: Iterable[int | None]) -> Scores:
        stored = frozenset(values)
        scores = {_score(v) for v in stored}
        kept = stored if len(scores) <= SCORES_KEPT else frozenset()
        return cls(len(scores), min(scores, default=None), max(scores, default=None), kept)


@dataclass(frozen=True)
class FailureGroup:
    """Workers that failed for the same reason: how many, and the first few of them."""

    code: str
    message: str
    hint: str | None
    count: int
    worker_ids: tuple[str, ...]  # the first IDS_KEPT_PER_FAILURE, in list order


@dataclass(frozen=True)
class OutcomeDigest:
    """A request's outcomes, as much as its messages show (see the module docstring)."""

    counts: Mapping[tuple[Operation, WorkerStatus], int] = field(default_factory=dict)  # zero counts left out
    workers: tuple[str, ...] = ()  # the first WORKERS_KEPT, in list order
    skipped_workers: tuple[str, ...] = ()  # the first WORKERS_KEPT skipped
    # Per operation, the workers done (status granted), when at most WORKERS_KEPT workers were called; else none.
    done_workers: Mapping[Operation, tuple[str, ...]] = field(default_factory=dict)  # no empty tuples
    failures: tuple[FailureGroup, ...] = ()  # the FAILURE_GROUPS_KEPT largest, largest first
    failure_reasons: int = 0  # how many groups in all
    scores: Scores = Scores()  # every worker's (a revoke's value is None)
    grant_scores: Scores = Scores()  # the scores granted, to the workers called or not
    called_grant_scores: Scores = Scores()  # the scores granted to the workers called (not skipped)
    skipped_grant_scores: Scores = Scores()  # the scores the skipped workers already held

    def count(self, operation: Operation | None = None, status: WorkerStatus | None = None) -> int:
        """Workers with this operation and this status (None: any)."""
        return sum(n for (op, st), n in self.counts.items() if operation in (None, op) and status in (None, st))

    def called(self, operation: Operation | None = None) -> int:
        """Workers called or to be called (all but the skipped)."""
        return self.count(operation) - self.count(operation, WorkerStatus.SKIPPED)

    @classmethod
    def of(cls, outcomes: Sequence[WorkerOutcome]) -> OutcomeDigest:
        """The digest of outcomes in list order (as the store reads them), computed in memory."""
        counts: dict[tuple[Operation, WorkerStatus], int] = {}
        for o in outcomes:
            counts[(o.operation, o.status)] = counts.get((o.operation, o.status), 0) + 1
        called = [o for o in outcomes if o.status is not WorkerStatus.SKIPPED]
        done: dict[Operation, tuple[str, ...]] = {}
        if len(called) <= WORKERS_KEPT:
            for o in called:
                if o.status is WorkerStatus.GRANTED:
                    done[o.operation] = (*done.get(o.operation, ()), o.worker_id)
        groups = _failure_groups(outcomes)
        return cls(
            counts=counts,
            workers=tuple(o.worker_id for o in outcomes[:WORKERS_KEPT]),
            skipped_workers=tuple(o.worker_id for o in outcomes if o.status is WorkerStatus.SKIPPED)[:WORKERS_KEPT],
            done_workers=done,
            failures=tuple(groups[:FAILURE_GROUPS_KEPT]),
            failure_reasons=len(groups),
            **scores_of((o.integer_value, o.operation, o.status) for o in outcomes),
        )


def scores_of(workers: Iterable[tuple[int | None, Operation, WorkerStatus]]) -> dict[str, Scores]:
    """The digest's Scores, by field name, from each worker's (value, operation, status), or from each distinct
    (value, operation, status) there is: the same Scores either way."""
    workers = list(workers)
    grants = [(value, status) for value, operation, status in workers if operation is Operation.GRANT]
    return {
        "scores": Scores.of(value for value, _, _ in workers),
        "grant_scores": Scores.of(value for value, _ in grants),
        "called_grant_scores": Scores.of(value for value, status in grants if status is not WorkerStatus.SKIPPED),
        "skipped_grant_scores": Scores.of(value for value, status in grants if status is WorkerStatus.SKIPPED),
    }


def _failure_groups(outcomes: Iterable[WorkerOutcome]) -> list[FailureGroup]:
    """Failed workers grouped by reason, the largest group first (of equal ones, the one failing first)."""
    groups: dict[tuple[str, str, str | None], list[str]] = {}
    for outcome in outcomes:
        if outcome.status is WorkerStatus.FAILED:
            groups.setdefault(failure_reason(outcome), []).append(outcome.worker_id)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    return [
        FailureGroup(code, message, hint, len(ids), tuple(ids[:IDS_KEPT_PER_FAILURE]))
        for (code, message, hint), ids in ordered
    ]
