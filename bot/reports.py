"""The per-worker files people download: a grant's workers, its preview and results, a qualification's holders
(the messages' failures grouped by reason are in bot/outcome_digest.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC
from typing import TextIO

from bot.mturk import QualificationScore
from bot.preview import ChangeKind, HeldStatus
from bot.requests import Operation, WorkerOutcome, WorkerStatus
from bot.store import RecordedChange


def write_results_csv(outcomes: Iterable[WorkerOutcome], out: TextIO) -> None:
    """The results CSV into `out`, row by row as the outcomes come (from the store, a page at a time)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["WorkerId", "IntegerValue", "Status", "ErrorCode", "ErrorMessage", "Hint"])
    for o in outcomes:
        value = "" if o.integer_value is None else o.integer_value
        status = "revoked" if o.operation is Operation.REVOKE and o.status is WorkerStatus.GRANTED else o.status.value
        writer.writerow([o.worker_id, value, status, o.error_code or "", o.error_message or "", o.hint or ""])


def workers_csv(outcomes: Iterable[WorkerOutcome]) -> str:
    """The full list of who a request would grant, and with what score, for the approver to check."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["WorkerId", "IntegerValue"])
    for o in outcomes:
        value = "Revoke" if o.operation is Operation.REVOKE else 1 if o.integer_value is None else o.integer_value
        writer.writerow([o.worker_id, value])
    return buffer.getvalue()


def write_preview_csv(changes: Iterable[RecordedChange], mturk_env_label: str, out: TextIO, *, with_file: bool) -> None:
    """The preview, one row per worker, into `out` as the changes come: what MTurk holds now, what the grant
    gives, and the change; with `with_file`, a worker file's CURRENT- score beside it, flagged when MTurk says
    otherwise (the file may be stale)."""
    writer = csv.writer(out, lineterminator="\n")
    header = ["WorkerId", "Current", "New", "Change"]
    writer.writerow(header + (["FileCurrent", "FileDiffers"] if with_file else []))
    for c in changes:
        new: object = 1 if c.integer_value is None else c.integer_value
        if c.operation is Operation.REVOKE:
            new = "revoke"
        current = c.previous.text() if c.previous else "not read"
        change = c.change.value if c.change else "not read"
        if c.change is ChangeKind.UNKNOWN_WORKER:
            change = f"unknown in {mturk_env_label}"
        elif c.change is ChangeKind.UNCHANGED:
            change = "unchanged (not called)" if c.status is WorkerStatus.SKIPPED else "unchanged (granted again)"
        elif c.change is ChangeKind.NOT_HELD:
            change = "does not hold it (not called)"
        row: list[object] = [c.worker_id, current, new, change]
        if with_file:
            differs = c.file_current is not None and file_differs(c)
            row += ["" if c.file_current is None else c.file_current, "yes" if differs else ""]
        writer.writerow(row)


def file_differs(change: RecordedChange) -> bool:
    """Whether the worker file's CURRENT- score is not what MTurk held at the preview (as the store counts it)."""
    held = change.previous
    if change.file_current is None or held is None or held.status is HeldStatus.UNREAD:
        return False
    return held.status is not HeldStatus.GRANTED or held.value != change.file_current


# What ListWorkersWithQualificationType is asked for, in this order: holders first, then revoked ones.
HOLDER_STATUSES = ("Granted", "Revoked")


def write_holders_csv(holders: Iterable[tuple[str, QualificationScore]], out: TextIO) -> dict[str, int]:
    """Every holder of a qualification as CSV rows into `out`, as MTurk's pages arrive; the count per status.

    A worker is listed with the status it was asked for (MTurk pages by status). GrantTime is UTC, ISO 8601.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["WorkerId", "IntegerValue", "Status", "GrantTime"])
    counts = dict.fromkeys(HOLDER_STATUSES, 0)
    for status, holder in holders:
        granted_at = holder.granted_at.astimezone(UTC).isoformat(timespec="seconds") if holder.granted_at else ""
        writer.writerow([holder.worker_id, holder.integer_value, holder.status or status, granted_at])
        counts[status] = counts.get(status, 0) + 1
    return counts
