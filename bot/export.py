"""The record, out of Slack: every request of a period as CSV rows, one per worker, for approvers.

Rows are produced lazily, a page of the store at a time (GrantStore.export_page, keyset-paginated), so an
export of any size holds no more than a page in memory; write_csv streams them into a binary file (a temporary
file on disk, in the Slack layer). Times are UTC, in ISO 8601. Nothing here knows Slack.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import BinaryIO

from bot.policy import AccessPolicy
from bot.requests import ExportLookup, GrantRequest, Operation, WorkerOutcome, WorkerStatus
from bot.service import NotAllowed
from bot.store import GrantStore, now

EXPORT_COLUMNS = (
    "RequestId",
    "CreatedAt",
    "RequestedBy",
    "DecidedBy",
    "DecidedAt",
    "State",
    "Environment",
    "QualificationTypeId",
    "QualificationTypeName",
    "WorkerId",
    "Operation",
    "IntegerValue",
    "Outcome",
    "ErrorCode",
    "ErrorMessage",
)
PAGE_ROWS = 1000


@dataclass(frozen=True)
class ExportPlan:
    """What one export covers: requests made from `since` (from the first, for None) up to `until`."""

    since: datetime | None
    until: datetime
    requests: int  # how many requests were made in the period


class RequestExport:
    """The export use case: only approvers may export; the rows come from the store page by page."""

    def __init__(
        self,
        store: GrantStore,
        policy: AccessPolicy,
        *,
        clock: Callable[[], datetime] = now,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.page_rows = page_rows

    def plan(self, user_id: str, wanted: ExportLookup) -> ExportPlan:
        """The period and how many requests it holds; NotAllowed for anyone but an approver."""
        if refusal := self.policy.export_refusal(user_id):
            raise NotAllowed(refusal)
        until = self.clock()
        since = None
        if wanted.since_date is not None:
            since = datetime.combine(wanted.since_date, time(), tzinfo=UTC)
        elif wanted.last_days is not None:
            since = until - timedelta(days=wanted.last_days)
        return ExportPlan(since, until, self.store.count_requests_made(since, until))

    def rows(self, plan: ExportPlan) -> Iterator[tuple[str, ...]]:
        """The header, then one row per worker of every request in the period, request by request; lazily."""
        yield EXPORT_COLUMNS
        after: tuple[int, str] | None = None
        while True:
            page = self.store.export_page(plan.since, plan.until, after, self.page_rows)
            for request, outcome in page:
                yield export_row(request, outcome)
            if len(page) < self.page_rows:
                return
            last_request, last_outcome = page[-1]
            after = (last_request.id, last_outcome.worker_id)


def export_row(request: GrantRequest, outcome: WorkerOutcome) -> tuple[str, ...]:
    return (
        str(request.id),
        _when(request.created_at),
        request.requester_id,
        request.decided_by or "",
        _when(request.decided_at),
        request.state.value,
        request.mturk_env,
        request.qualification_type_id,
        request.qualification_name or "",
        outcome.worker_id,
        outcome.operation.value,
        "" if outcome.integer_value is None else str(outcome.integer_value),
        _outcome(outcome),
        outcome.error_code or "",
        outcome.error_message or "",
    )


def _outcome(outcome: WorkerOutcome) -> str:
    """The worker's outcome in words: a revoke that went through is stored as done ("granted") with its operation."""
    if outcome.operation is Operation.REVOKE and outcome.status is WorkerStatus.GRANTED:
        return "revoked"
    return outcome.status.value


def write_csv(rows: Iterator[tuple[str, ...]], file: BinaryIO) -> int:
    """Write the rows as UTF-8 CSV into `file` as they come; how many rows after the header."""
    text = io.TextIOWrapper(file, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        count = -1
        for row in rows:
            writer.writerow(row)
            count += 1
        text.flush()
    finally:
        text.detach()  # leave `file` open for the caller
    return max(count, 0)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else ""
