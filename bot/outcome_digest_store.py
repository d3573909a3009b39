r"""A stored request's OutcomeDigest (bot/outcome_digest.py), computed in the database.

Counts, distinct scores and failure groups are GROUP BYs; the worker IDs a message shows are LIMITed selects by
position. A 100,000-worker request's digest reads back a few dozen rows and keeps none of its outcomes in memory.
The same SQL runs on SQLite and PostgreSQL; only the reshaping of MTurk's messages for grouping (the patterns of
bot/outcome_digest.py) differs: PostgreSQL's regexp_replace, or on SQLite, which has no regular expressions, the
very Python function the digest uses in memory. PostgreSQL's \s and \d are narrower than Python's (no no-break
space; ASCII digits only), so a message ending in such characters would group as written there; MTurk's do not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, distinct, func, select, true

from bot.outcome_digest import (
    FAILURE_GROUPS_KEPT,
    IDS_KEPT_PER_FAILURE,
    QUOTED_WORKER,
    QUOTED_WORKER_SHOWN,
    REQUEST_ID_SUFFIX,
    SCORES_KEPT,
    WORKERS_KEPT,
    FailureGroup,
    OutcomeDigest,
    Scores,
    scores_of,
    shared_message,
)
from bot.requests import Operation, WorkerStatus
from bot.store import worker_grants

_SQLITE_SHARED_MESSAGE = "grant_qual_shared_message"
_TALLY_ROWS = 200  # distinct (score, operation, status) read back at most: enough for 25 distinct scores


def _scored() -> dict[str, ColumnElement[bool]]:
    """Whose scores each of the digest's Scores counts."""
    c = worker_grants.c
    grant = c.operation == Operation.GRANT.value
    return {
        "scores": true(),
        "grant_scores": grant,
        "called_grant_scores": and_(grant, c.status != WorkerStatus.SKIPPED.value),
        "skipped_grant_scores": and_(grant, c.status == WorkerStatus.SKIPPED.value),
    }


class OutcomeDigestStore:
    """Reads requests' outcome digests (read only; the GrantStore writes the outcomes)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def digest(self, request_id: int) -> OutcomeDigest:
        c = worker_grants.c
        mine = c.request_id == request_id
        with self.engine.connect() as conn:
            counts, scores = _tally(conn, mine)
            called = sum(n for (_, status), n in counts.items() if status is not WorkerStatus.SKIPPED)
            failures, reasons = _failure_groups(conn, mine)
            return OutcomeDigest(
                counts=counts,
                workers=_first_ids(conn, mine),
                skipped_workers=_first_ids(conn, mine, c.status == WorkerStatus.SKIPPED.value),
                done_workers=_done_workers(conn, mine) if called <= WORKERS_KEPT else {},
                failures=failures,
                failure_reasons=reasons,
                **scores,
            )


def _tally(
    conn: Connection, mine: ColumnElement[bool]
) -> tuple[dict[tuple[Operation, WorkerStatus], int], dict[str, Scores]]:
    """The counts and the Scores. Usually in one GROUP BY: a request has a few distinct scores, so a few distinct
    (score, operation, status); with more than _TALLY_ROWS of them, by the aggregates of _scores instead."""
    c = worker_grants.c
    kinds = (c.integer_value, c.operation, c.status)
    query = select(*kinds, func.count()).where(mine).group_by(*kinds).limit(_TALLY_ROWS + 1)
    rows = [
        (value, Operation(operation), WorkerStatus(status), n) for value, operation, status, n in conn.execute(query)
    ]
    if len(rows) > _TALLY_ROWS:
        return _counts(conn, mine), _scores(conn, mine)
    counts: dict[tuple[Operation, WorkerStatus], int] = {}
    for _, operation, status, n in rows:
        counts[(operation, status)] = counts.get((operation, status), 0) + n
    return counts, scores_of((value, operation, status) for value, operation, status, _ in rows)


def _counts(conn: Connection, mine: ColumnElement[bool]) -> dict[tuple[Operation, WorkerStatus], int]:
    c = worker_grants.c
    query = select(c.operation, c.status, func.count()).where(mine).group_by(c.operation, c.status)
    return {(Operation(operation), WorkerStatus(status)): n for operation, status, n in conn.execute(query)}


def _first_ids(conn: Connection, *conditions: ColumnElement[bool]) -> tuple[str, ...]:
    c = worker_grants.c
    query = select(c.worker_id).where(*conditions).order_by(c.position).limit(WORKERS_KEPT)
    return tuple(conn.execute(query).scalars())


def _done_workers(conn: Connection, mine: ColumnElement[bool]) -> dict[Operation, tuple[str, ...]]:
    """The workers done, per operation (called only when at most WORKERS_KEPT were called)."""
    c = worker_grants.c
    query = (
        select(c.operation, c.worker_id)
        .where(mine, c.status == WorkerStatus.GRANTED.value)
        .order_by(c.position)
        .limit(WORKERS_KEPT)
    )
    done: dict[Operation, tuple[str, ...]] = {}
    for operation, worker_id in conn.execute(query):
        done[Operation(operation)] = (*done.get(Operation(operation), ()), worker_id)
    return done


def _scores(conn: Connection, mine: ColumnElement[bool]) -> dict[str, Scores]:
    """Each Scores of the digest: how many distinct scores, and their range, in one pass; the values themselves
    (a few) only where there are at most SCORES_KEPT."""
    c = worker_grants.c
    score = func.coalesce(c.integer_value, 1)
    columns: list[Any] = []
    scored_among = _scored()
    for among in scored_among.values():
        scored = case((among, score))
        columns += [func.count(distinct(scored)), func.min(scored), func.max(scored)]
    row = conn.execute(select(*columns).where(mine)).one()
    found = {}
    for i, (name, among) in enumerate(scored_among.items()):
        count, lowest, highest = row[3 * i : 3 * i + 3]
        values: frozenset[int | None] = frozenset()
        if 0 < count <= SCORES_KEPT:  # as stored, None apart from 1: at most one more than the scores
            query = select(c.integer_value).where(mine, among).distinct().limit(SCORES_KEPT + 1)
            values = frozenset(conn.execute(query).scalars())
        found[name] = Scores(count, lowest, highest, values)
    return found


def _failure_groups(conn: Connection, mine: ColumnElement[bool]) -> tuple[tuple[FailureGroup, ...], int]:
    """The largest failure groups (of equal ones, the one failing first) and how many groups there are, in one
    GROUP BY; then each group's first workers, by a LIMITed select read by position from the group's first."""
    c = worker_grants.c
    code = func.coalesce(func.nullif(c.error_code, ""), "Unknown")
    message = func.coalesce(
        func.nullif(_shared_message(conn, func.coalesce(c.error_message, "")), ""),
        func.nullif(c.error_code, ""),
        "unknown error",
    )
    failed = (
        select(c.worker_id, c.position, code.label("code"), message.label("message"), c.hint)
        .where(mine, c.status == WorkerStatus.FAILED.value)
        .subquery()
    )
    f = failed.c
    size, first = func.count().label("size"), func.min(f.position).label("first")
    largest = (
        select(f.code, f.message, f.hint, size, first, func.count().over().label("groups"))
        .group_by(f.code, f.message, f.hint)
        .order_by(size.desc(), first)
        .limit(FAILURE_GROUPS_KEPT)
    )
    rows = conn.execute(largest).all()
    groups = []
    for row in rows:
        same = (f.code == row.code, f.message == row.message, f.hint.is_not_distinct_from(row.hint))
        ids = select(f.worker_id).where(*same, f.position >= row.first).order_by(f.position).limit(IDS_KEPT_PER_FAILURE)
        groups.append(FailureGroup(row.code, row.message, row.hint, row.size, tuple(conn.execute(ids).scalars())))
    return tuple(groups), rows[0].groups if rows else 0


def _shared_message(conn: Connection, message: ColumnElement[str]) -> ColumnElement[str]:
    """SQL for shared_message(message): MTurk's message without its per-call and per-worker parts."""
    if conn.dialect.name == "sqlite":
        # Registered on the connection at hand: a pooled connection may predate this module's use.
        driver: Any = conn.connection.driver_connection
        driver.create_function(_SQLITE_SHARED_MESSAGE, 1, shared_message, deterministic=True)
        return getattr(func, _SQLITE_SHARED_MESSAGE)(message)
    without_suffix = func.regexp_replace(message, REQUEST_ID_SUFFIX, "")
    return func.regexp_replace(without_suffix, QUOTED_WORKER, QUOTED_WORKER_SHOWN, "g")
