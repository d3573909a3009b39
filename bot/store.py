"""The record: SQLAlchemy tables for requests and per-worker results, and their atomic state transitions.

Every transition is one conditional UPDATE (compare-and-swap on `state`), so the first decision wins on any
replica and a grant is claimed by exactly one executor at a time. Nothing about a request lives only in
memory or in a Slack message. Likewise a delivery from Slack is taken by inserting its key, which only one
caller can do.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.preview import ChangeKind, Held, HeldStatus, WorkerChange
from bot.requests import (
    OUTCOME_UNKNOWN,
    DeliveryState,
    EventKind,
    GrantRequest,
    GrantSpec,
    Operation,
    RequestEvent,
    RequestState,
    WorkerOutcome,
    WorkerStatus,
    WorkerTarget,
)
from bot.turns import TurnQueue

# Rows per INSERT (executemany) when a request's workers are stored, and per page when they are read back.
INSERT_BATCH_ROWS = 5_000


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones) and always hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
metadata = MetaData()

grant_requests = Table(
    "grant_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("requester_id", String(32), nullable=False),
    Column("qualification_type_id", String(64), nullable=False),
    Column("qualification_name", String(255)),
    Column("send_notification", Boolean, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("mturk_env", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("worker_count", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("decided_by", String(32)),
    Column("decided_at", UtcDateTime),
    Column("channel_id", String(32)),
    Column("message_ts", String(32)),
    Column("finished_at", UtcDateTime),
    # The executor holding the grant, and until when; an expired lease means its process died.
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UtcDateTime),
    # Round 1 is the approved grant; each "Retry failed" starts the next round for the failed workers.
    Column("round", Integer, nullable=False, server_default="1"),
    Column("progress_ts", String(32)),  # the thread message updated while a round runs
    Column("summary_ts", String(32)),  # the thread message with the latest round's summary
    Column("reminded_at", UtcDateTime),  # when the approvers were reminded of it, still pending (once)
    # Distinct approvers needed before it runs, fixed when it was made; and the reason given for a rejection.
    Column("approvals_required", Integer, nullable=False, server_default="1"),
    Column("decision_reason", Text),
    # Grant workers who already held the score at the preview too; NULL (before the preview existed) is no.
    Column("regrant", Boolean),
    # Revokes: the text MTurk shows (and emails) the revoked workers; NULL sends them nothing. `reason` is internal.
    Column("worker_message", Text),
    # Undo: the request this one undoes, and the one request that undoes this one (set once, by compare-and-swap).
    Column("undo_of", Integer),
    Column("undone_by", Integer),
    Column("revoke_count", Integer, nullable=False, server_default="0"),  # workers revoked; the others are granted
    # Grants that expire (bot/expiry.py): the duration asked for, counted from the end of the first round (which
    # sets expires_at), or a moment given; the request revoking it once expired (set once, by compare-and-swap);
    # when its requester was told it expires soon (once); on an expiry request, the request whose grant expired.
    Column("expires_after_seconds", Integer),
    Column("expires_at", UtcDateTime),
    Column("expiry_request_id", Integer),
    Column("expiry_notice_at", UtcDateTime),
    Column("expiry_of", Integer),
)

worker_grants = Table(
    "worker_grants",
    metadata,
    Column("request_id", Integer, ForeignKey("grant_requests.id"), primary_key=True),
    Column("worker_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("integer_value", Integer),
    Column("status", String(16), nullable=False),
    Column("error_code", String(128)),
    Column("error_message", Text),
    Column("hint", Text),
    # Set when a call is about to be made: a pending worker with a dispatch time is "in doubt" after a crash.
    Column("dispatched_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("round", Integer, nullable=False, server_default="1"),  # the round that recorded this outcome
    # The preview (bot/preview.py): what MTurk held before the grant (status NULL: not read, granted as requested)
    # and the change the grant makes; file_current is the worker file's CURRENT- score, when it had one.
    Column("previous_value", Integer),
    Column("previous_status", String(16)),
    Column("change", String(16)),
    Column("file_current", Integer),
    Column("operation", String(8), nullable=False, server_default="grant"),  # grant or revoke (bot.requests.Operation)
)
# Each approver's approval of a request, once: a second click by the same approver inserts nothing.
request_approvals = Table(
    "request_approvals",
    metadata,
    Column("request_id", Integer, ForeignKey("grant_requests.id"), primary_key=True),
    Column("approver_id", String(32), primary_key=True),
    Column("approved_at", UtcDateTime, nullable=False),
)
Index("ix_grant_requests_state", grant_requests.c.state)
Index("ix_grant_requests_expires_at", grant_requests.c.expires_at)
Index("ix_worker_grants_request_status", worker_grants.c.request_id, worker_grants.c.status)
# The executor reads a request's pending workers a page at a time, by position.
Index("ix_worker_grants_request_position", worker_grants.c.request_id, worker_grants.c.position)

# What happened to a request (the audit trail) and, per event, whether Slack has been told (the outbox):
# an event is written in the same transaction as the state change it records, so none is ever lost.
request_events = Table(
    "request_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("grant_requests.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor_id", String(32)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivery_state", String(16), nullable=False),
    Column("steps_done", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_expires_at", UtcDateTime),
    Column("last_error", Text),
    Column("delivered_at", UtcDateTime),
    Column("round", Integer, nullable=False, server_default="1"),
)
Index("ix_request_events_delivery", request_events.c.delivery_state, request_events.c.next_attempt_at)
Index("ix_request_events_request", request_events.c.request_id, request_events.c.id)

# The keys of the Slack deliveries already taken (commands, form submissions), so that a replayed, retried
# or re-delivered copy is recognised on any replica and after a restart; kept for DELIVERY_KEYS_KEPT.
deliveries_taken = Table(
    "deliveries_taken",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)
Index("ix_deliveries_taken_received_at", deliveries_taken.c.received_at)
# Far longer than any copy can come: a signature is good for 5 minutes, and Slack retries within minutes.
DELIVERY_KEYS_KEPT = timedelta(days=1)


class ApprovalResult(StrEnum):
    APPROVED = "approved"  # this approval completed the number needed: pending → approved
    ADDED = "added"  # counted, and more are needed: still pending
    ALREADY_COUNTED = "already_counted"  # this approver's approval was counted before: nothing changed
    NOT_PENDING = "not_pending"  # decided, cancelled or expired meanwhile: nothing changed


@dataclass(frozen=True)
class Approval:
    """What one approval did, and everyone whose approval of the request counts so far (in order)."""

    result: ApprovalResult
    approvers: tuple[str, ...] = ()


class _AlreadyUndone(Exception):
    """Rolls back the transaction storing an undo whose original was undone (or is not finished) meanwhile."""


class _AlreadyExpired(Exception):
    """Rolls back the transaction storing an expiry request whose original expired meanwhile (or never can)."""


class DatabaseUnreachable(Exception):
    """The database could not be opened; the message is one line, without the password."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands against this code's migrations, found without creating or changing anything."""

    revision: str | None  # the database's migration; None when it has no tables yet
    head: str  # the latest migration in bot/migrations
    known: bool  # whether bot/migrations has `revision` (a newer grant-qual may have upgraded the database)
    missing_file: Path | None = None  # an SQLite file that does not exist yet: start-up creates it

    @property
    def at_head(self) -> bool:
        return self.revision == self.head


def now() -> datetime:
    return datetime.now(UTC)


def create_database_engine(url: str) -> Engine:
    """An engine for `url`; plain postgresql:// URLs use psycopg 3, SQLite gets WAL and a busy timeout."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL still survives a crash of the app; only a power loss can undo the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class GrantStore:
    """Requests, decisions and per-worker outcomes, with compare-and-swap state transitions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and makes the others sleep and poll; queueing them in the process
        # instead keeps short transactions from waiting behind the polls, and lets a click's decision,
        # which Slack is waiting on, go before the background's outcome and delivery writes.
        self._writers = TurnQueue() if engine.dialect.name == "sqlite" else None

    @contextmanager
    def _write(self, *, someone_waiting: bool = False) -> Iterator[Connection]:
        """A write transaction; `someone_waiting` for writes made before an acknowledgement to Slack."""
        if self._writers is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._writers.turn(urgent=someone_waiting), self.engine.begin() as conn:
            yield conn

    def upgrade_schema(self) -> None:
        """Create or upgrade the tables with the Alembic migrations in bot/migrations; data is kept."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas starting together take turns; the second finds the schema current.
                conn.execute(text("SELECT pg_advisory_xact_lock(724201)"))
            config.attributes["connection"] = conn
            alembic_command.upgrade(config, "head")

    def schema_status(self) -> SchemaStatus:
        """The schema's migration against bot/migrations' head; opens no SQLite file that does not exist yet."""
        scripts = ScriptDirectory(str(MIGRATIONS))
        head = scripts.get_current_head()
        assert head is not None
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            file = Path(database)
            if not file.exists():
                return SchemaStatus(None, head, known=True, missing_file=file)
        try:
            with self.engine.connect() as conn:
                revision = _current_revision(conn)
        except SQLAlchemyError as error:
            reason = error.orig if isinstance(error, DBAPIError) else error
            raise DatabaseUnreachable((str(reason).strip().splitlines() or [type(reason).__name__])[0]) from None
        return SchemaStatus(revision, head, known=revision is None or _has_revision(scripts, revision))

    def create_request(
        self,
        spec: GrantSpec,
        *,
        requester_id: str,
        mturk_env: str,
        qualification_name: str | None,
        approvals_required: int = 1,
        preview_owner: str | None = None,
        lease: timedelta = timedelta(seconds=60),
    ) -> GrantRequest:
        """Store a request: pending (posted for approval by its SUBMITTED event), or, with `preview_owner`,
        previewing under that owner's lease until finish_preview makes it pending."""
        with self._write() as conn:
            request_id = _insert_request(
                conn,
                spec,
                requester_id=requester_id,
                mturk_env=mturk_env,
                qualification_name=qualification_name,
                preview_owner=preview_owner,
                lease=lease,
                approvals_required=approvals_required,
            )
        request = self.get(request_id)
        assert request is not None
        return request

    # The preview: a previewing request is held by one process at a time, with a lease like a grant's.

    def claim_preview(self, request_id: int, *, owner: str, lease: timedelta, mturk_env: str) -> bool:
        """Take over a previewing request of `mturk_env` whose previewer's lease expired (its process died)."""
        c = grant_requests.c
        moment = now()
        return self._swap(
            request_id,
            (
                c.state == RequestState.PREVIEWING,
                c.mturk_env == mturk_env,
                or_(c.lease_expires_at.is_(None), c.lease_expires_at < moment),
            ),
            lease_owner=owner,
            lease_expires_at=moment + lease,
        )

    def renew_preview_lease(self, request_id: int, *, owner: str, lease: timedelta) -> bool:
        c = grant_requests.c
        return self._swap(
            request_id, (c.state == RequestState.PREVIEWING, c.lease_owner == owner), lease_expires_at=now() + lease
        )

    def abandoned_preview_ids(self, mturk_env: str) -> list[int]:
        """Previewing requests of `mturk_env` whose previewer's lease expired: a process died during their preview.

        The other environment's are left to a process of theirs: reading another environment's scores would
        preview a change that is not the one that would run."""
        c = grant_requests.c
        query = (
            select(c.id)
            .where(c.state == RequestState.PREVIEWING, c.mturk_env == mturk_env, c.lease_expires_at < now())
            .order_by(c.id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def preview_targets(self, request_id: int) -> list[WorkerTarget]:
        """Every worker of the request, in order (a preview read after a crash reads them all again)."""
        c = worker_grants.c
        query = select(c.worker_id, c.integer_value, c.operation).where(c.request_id == request_id).order_by(c.position)
        with self.engine.connect() as conn:
            return [
                WorkerTarget(row.worker_id, row.integer_value, Operation(row.operation)) for row in conn.execute(query)
            ]

    def record_changes(
        self, request_id: int, changes: Sequence[WorkerChange], *, regrant: bool, owner: str | None = None
    ) -> None:
        """Write a batch of the preview's per-worker changes; unchanged workers are SKIPPED unless `regrant`.

        Only while the request is previewing (and, given `owner`, held by that previewer): a previewer that
        lost its lease to another process changes nothing."""
        if not changes:
            return
        c = worker_grants.c
        statement = (
            update(worker_grants)
            .where(c.request_id == bindparam("b_request_id"), c.worker_id == bindparam("b_worker_id"))
            .values(
                previous_value=bindparam("b_previous_value"),
                previous_status=bindparam("b_previous_status"),
                change=bindparam("b_change"),
                status=bindparam("b_status"),
            )
        )
        rows = [
            {
                "b_request_id": request_id,
                "b_worker_id": change.worker_id,
                "b_previous_value": change.previous.value,
                "b_previous_status": change.previous.status.value,
                "b_change": change.kind.value,
                "b_status": WorkerStatus.SKIPPED
                if (change.kind is ChangeKind.UNCHANGED and not regrant) or change.kind is ChangeKind.NOT_HELD
                else WorkerStatus.PENDING,
            }
            for change in changes
        ]
        r = grant_requests.c
        held = select(r.id).where(r.id == request_id, r.state == RequestState.PREVIEWING)
        if owner is not None:
            held = held.where(r.lease_owner == owner)
        with self._write() as conn:
            conn.execute(statement.where(exists(held)), rows)

    def finish_preview(self, request_id: int, *, owner: str) -> bool:
        """previewing → pending, with the SUBMITTED event that posts it; True only for the previewer holding it."""
        c = grant_requests.c
        with self._write() as conn:
            won = _swap(
                conn,
                request_id,
                (c.state == RequestState.PREVIEWING, c.lease_owner == owner),
                state=RequestState.PENDING,
                lease_owner=None,
                lease_expires_at=None,
            )
            if won:
                requester = conn.execute(select(c.requester_id).where(c.id == request_id)).scalar_one()
                _add_event(conn, request_id, EventKind.SUBMITTED, requester, 1)
        return won

    def changes(self, request_id: int) -> list[RecordedChange]:
        """Every worker's recorded change, in order; `change` None for a request stored without a preview."""
        c = worker_grants.c
        query = select(worker_grants).where(c.request_id == request_id).order_by(c.position)
        with self.engine.connect() as conn:
            return [_to_recorded_change(row) for row in conn.execute(query).mappings()]

    def iter_changes(self, request_id: int, page_rows: int = INSERT_BATCH_ROWS) -> Iterator[RecordedChange]:
        """changes(), read a page at a time by position (a big request's preview file is written from this)."""
        c = worker_grants.c
        after = -1
        while True:
            query = (
                select(worker_grants)
                .where(c.request_id == request_id, c.position > after)
                .order_by(c.position)
                .limit(page_rows)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            for row in rows:
                yield _to_recorded_change(row)
            if len(rows) < page_rows:
                return
            after = rows[-1]["position"]

    def has_file_current(self, request_id: int) -> bool:
        """Whether any worker came with a worker file's CURRENT- score."""
        c = worker_grants.c
        query = select(exists().where(c.request_id == request_id, c.file_current.is_not(None)))
        with self.engine.connect() as conn:
            return bool(conn.execute(query).scalar())

    def preview_summary(self, request_id: int, examples: int = 3) -> PreviewSummary | None:
        """The preview's counts per kind of change, a few examples of each, and the worker file's mismatches;
        None for a request without a preview."""
        c = worker_grants.c
        mine = c.request_id == request_id
        counted = select(c.change, func.count()).where(mine, c.change.is_not(None)).group_by(c.change)
        mismatched = and_(
            mine,
            c.file_current.is_not(None),
            or_(c.previous_status != HeldStatus.GRANTED.value, c.previous_value != c.file_current),
            c.previous_status != HeldStatus.UNREAD.value,
        )
        with self.engine.connect() as conn:
            counts = {ChangeKind(kind): n for kind, n in conn.execute(counted)}
            if not counts:
                return None
            shown: dict[ChangeKind, list[RecordedChange]] = {}
            for kind in counts:
                query = select(worker_grants).where(mine, c.change == kind.value).order_by(c.position).limit(examples)
                shown[kind] = [_to_recorded_change(row) for row in conn.execute(query).mappings()]
            stale = conn.execute(select(func.count()).select_from(worker_grants).where(mismatched)).scalar_one()
            stale_examples = [
                _to_recorded_change(row)
                for row in conn.execute(
                    select(worker_grants).where(mismatched).order_by(c.position).limit(examples)
                ).mappings()
            ]
        return PreviewSummary({kind: counts.get(kind, 0) for kind in ChangeKind}, shown, stale, stale_examples)

    def record_drift(
        self, request_id: int, outcomes: Sequence[WorkerOutcome], current: dict[str, Held], round: int
    ) -> None:
        """Record workers left as they are because their state moved since the preview, and remember what they
        hold now as their previous state (a retry grants them from there)."""
        if not outcomes:
            return
        self.record_outcomes(request_id, outcomes, round)
        c = worker_grants.c
        statement = (
            update(worker_grants)
            .where(c.request_id == bindparam("b_request_id"), c.worker_id == bindparam("b_worker_id"))
            .values(previous_value=bindparam("b_value"), previous_status=bindparam("b_status"))
        )
        rows = [
            {"b_request_id": request_id, "b_worker_id": w, "b_value": held.value, "b_status": held.status.value}
            for w, held in current.items()
        ]
        with self._write() as conn:
            conn.execute(statement, rows)

    def changed_workers(self, request_id: int) -> dict[str, Held]:
        """The workers the request changed (done by it, not merely found done), each with the state recorded before
        it ran; a worker without a recorded state (no preview) is left out: there is nothing known to restore."""
        c = worker_grants.c
        query = (
            select(c.worker_id, c.previous_value, c.previous_status)
            .where(*_changed_by(request_id))
            .order_by(c.position)
        )
        held = _SharedHeld()
        with self.engine.connect() as conn:
            return {row.worker_id: held(row.previous_status, row.previous_value) for row in conn.execute(query)}

    def changed_anyone(self, request_id: int) -> bool:
        """Whether changed_workers would name anyone (the summary's Undo button), found without reading them."""
        with self.engine.connect() as conn:
            return bool(conn.execute(select(exists().where(*_changed_by(request_id)))).scalar())

    def create_undo(
        self,
        spec: GrantSpec,
        *,
        requester_id: str,
        mturk_env: str,
        qualification_name: str | None,
        preview_owner: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        approvals_required: int = 1,
    ) -> GrantRequest | None:
        """Store the request undoing `spec.undo_of`, once: in the same transaction the original, finished and not
        undone yet, is marked undone by it (compare-and-swap) with its UNDO_REQUESTED event. None, with nothing
        stored, for every caller but the first (and for an original not finished)."""
        original = spec.undo_of
        assert original is not None
        try:
            request_id = self._insert_undo(
                spec, requester_id, mturk_env, qualification_name, preview_owner, lease, original, approvals_required
            )
        except _AlreadyUndone:
            return None  # the transaction was rolled back: nothing of the second undo is stored
        return self.get(request_id)

    def _insert_undo(
        self,
        spec: GrantSpec,
        requester_id: str,
        mturk_env: str,
        qualification_name: str | None,
        preview_owner: str | None,
        lease: timedelta,
        original: int,
        approvals_required: int = 1,
    ) -> int:
        c = grant_requests.c
        with self._write(someone_waiting=True) as conn:
            request_id = _insert_request(
                conn,
                spec,
                requester_id=requester_id,
                mturk_env=mturk_env,
                qualification_name=qualification_name,
                preview_owner=preview_owner,
                lease=lease,
                approvals_required=approvals_required,
            )
            finished = c.state.in_([RequestState.DONE, RequestState.FAILED])
            if not _swap(conn, original, (c.undone_by.is_(None), finished), undone_by=request_id):
                raise _AlreadyUndone
            round_ = conn.execute(select(c.round).where(c.id == original)).scalar_one()
            _add_event(conn, original, EventKind.UNDO_REQUESTED, requester_id, round_)
        return request_id

    # Grants that expire (bot/expiry.py): each step a compare-and-swap with its event, so it happens once.

    def due_expiry_ids(self, *, moment: datetime, mturk_env: str) -> list[int]:
        """Finished grants of `mturk_env` whose expiry has come and that no expiry request revokes yet."""
        c = grant_requests.c
        query = select(c.id).where(*_expiry_due(moment), c.mturk_env == mturk_env).order_by(c.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def start_expiry(self, original_id: int, *, moment: datetime, actor_id: str | None, due: bool) -> int | None:
        """Store, approved, the request revoking what `original_id` granted, and mark the original expired by it:
        one transaction, a compare-and-swap on the original having no expiry request yet (and, `due`, on its expiry
        having come by `moment`). The expiry request's ID for the one caller that stored it; None for all others.

        Its workers are those the original granted (operation grant, status granted), each recorded as holding the
        score the original gave them: the executor's drift check leaves alone whoever holds something else by then.
        It is posted in the original's thread: it has the original's channel and message.
        """
        try:
            return self._insert_expiry(original_id, moment, actor_id, due)
        except _AlreadyExpired:
            return None  # rolled back: nothing of a second expiry request is stored

    def _insert_expiry(self, original_id: int, moment: datetime, actor_id: str | None, due: bool) -> int:
        c, w = grant_requests.c, worker_grants.c
        with self._write(someone_waiting=actor_id is not None) as conn:
            conditions = _expiry_due(moment) if due else (c.expiry_request_id.is_(None), _finished_grant())
            # Locking the original first makes a losing replica wait here and find it expired, storing nothing.
            original = (
                conn.execute(select(grant_requests).where(c.id == original_id, *conditions).with_for_update())
                .mappings()
                .first()
            )
            if original is None:
                raise _AlreadyExpired
            granted = conn.execute(
                select(w.worker_id, w.integer_value)
                .where(w.request_id == original_id, w.status == WorkerStatus.GRANTED, w.operation == Operation.GRANT)
                .order_by(w.position)
            ).all()
            request_id = conn.execute(
                insert(grant_requests).values(
                    requester_id=original["requester_id"],
                    qualification_type_id=original["qualification_type_id"],
                    qualification_name=original["qualification_name"],
                    send_notification=False,
                    reason=f"Expiry of request #{original_id}",
                    mturk_env=original["mturk_env"],
                    state=RequestState.APPROVED,
                    worker_count=len(granted),
                    revoke_count=len(granted),
                    created_at=moment,
                    decided_by=actor_id,
                    decided_at=moment,
                    channel_id=original["channel_id"],
                    message_ts=original["message_ts"],
                    expiry_of=original_id,
                )
            ).inserted_primary_key[0]
            if granted:
                conn.execute(
                    insert(worker_grants),
                    [
                        {
                            "request_id": request_id,
                            "worker_id": worker_id,
                            "position": i,
                            "integer_value": None,
                            "status": WorkerStatus.PENDING,
                            "updated_at": moment,
                            "previous_status": HeldStatus.GRANTED.value,
                            "previous_value": 1 if value is None else value,  # MTurk's default score
                            "change": ChangeKind.REVOKE.value,
                            "operation": Operation.REVOKE.value,
                        }
                        for i, (worker_id, value) in enumerate(granted)
                    ],
                )
            if not _swap(conn, original_id, conditions, expiry_request_id=request_id):
                raise _AlreadyExpired
            _add_event(conn, request_id, EventKind.EXPIRY_STARTED, actor_id, 1)
        return int(request_id)

    def extend_expiry(self, request_id: int, *, expires_at: datetime, actor_id: str) -> bool:
        """Move a finished grant's expiry to `expires_at`, while it has not expired; its requester is told again."""
        c = grant_requests.c
        with self._write(someone_waiting=True) as conn:
            won = _swap(
                conn,
                request_id,
                (
                    c.expiry_request_id.is_(None),
                    _finished_grant(),
                    or_(c.expires_at.is_not(None), c.expires_after_seconds.is_not(None)),
                ),
                expires_at=expires_at,
                expiry_notice_at=None,
            )
            if won:
                round_ = conn.execute(select(c.round).where(c.id == request_id)).scalar_one()
                _add_event(conn, request_id, EventKind.EXPIRY_EXTENDED, actor_id, round_)
        return won

    def note_expiry_notices(self, *, moment: datetime, before: timedelta, mturk_env: str) -> list[int]:
        """Note, once per grant, that its requester is told it expires within `before`; the IDs this caller noted."""
        c = grant_requests.c
        due = (
            c.mturk_env == mturk_env,
            c.expiry_request_id.is_(None),
            c.expiry_notice_at.is_(None),
            _finished_grant(),
            c.expires_at > moment,
            c.expires_at <= moment + before,
        )
        return self._swap_each_due(due, EventKind.EXPIRY_NOTICE, expiry_notice_at=moment)

    def get(self, request_id: int) -> GrantRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(grant_requests).where(grant_requests.c.id == request_id)).mappings().first()
        return _to_request(row) if row else None

    def attach_message(self, request_id: int, channel_id: str, message_ts: str) -> None:
        with self._write() as conn:
            conn.execute(
                update(grant_requests)
                .where(grant_requests.c.id == request_id)
                .values(channel_id=channel_id, message_ts=message_ts)
            )

    def decide(self, request_id: int, *, user_id: str, approve: bool) -> bool:
        """Approve or reject; True only if this call moved the request out of pending."""
        if approve:
            return self.approve(request_id, user_id=user_id).result is ApprovalResult.APPROVED
        return self.reject(request_id, user_id=user_id)

    def approve(self, request_id: int, *, user_id: str) -> Approval:
        """Count `user_id`'s approval once; the approval that completes the number needed moves pending → approved.

        One transaction that first locks the request row with a conditional UPDATE (PostgreSQL makes a second
        approval wait for the first to commit, then reads the approvals again; SQLite takes its write lock),
        so two approvals arriving together are counted one after the other: exactly one of them approves.
        """
        c, a = grant_requests.c, request_approvals.c
        moment = now()
        with self._write(someone_waiting=True) as conn:
            lock = update(grant_requests).where(c.id == request_id, c.state == RequestState.PENDING)
            if conn.execute(lock.values(state=c.state)).rowcount != 1:
                return Approval(ApprovalResult.NOT_PENDING)
            counted = select(a.approver_id).where(a.request_id == request_id, a.approver_id == user_id)
            if conn.execute(counted).first() is not None:
                return Approval(ApprovalResult.ALREADY_COUNTED, _approvers(conn, request_id))
            approval = insert(request_approvals).values(request_id=request_id, approver_id=user_id, approved_at=moment)
            conn.execute(approval)
            approvers = _approvers(conn, request_id)
            required = conn.execute(select(c.approvals_required).where(c.id == request_id)).scalar_one()
            if len(approvers) < required:
                _add_event(conn, request_id, EventKind.APPROVAL_ADDED, user_id, 1)
                return Approval(ApprovalResult.ADDED, approvers)
            _swap(
                conn,
                request_id,
                (c.state == RequestState.PENDING,),
                state=RequestState.APPROVED,
                decided_by=user_id,
                decided_at=moment,
                finished_at=None,
            )
            _add_event(conn, request_id, EventKind.APPROVED, user_id, 1)
        return Approval(ApprovalResult.APPROVED, approvers)

    def reject(self, request_id: int, *, user_id: str, reason: str = "") -> bool:
        """pending → rejected, whatever approvals it has; True only for the one caller whose rejection took effect."""
        moment = now()
        with self._write(someone_waiting=True) as conn:
            won = _swap(
                conn,
                request_id,
                (grant_requests.c.state == RequestState.PENDING,),
                state=RequestState.REJECTED,
                decided_by=user_id,
                decided_at=moment,
                finished_at=moment,
                decision_reason=reason or None,
            )
            if won:
                _add_event(conn, request_id, EventKind.REJECTED, user_id, 1)
        return won

    def approvers(self, request_id: int) -> tuple[str, ...]:
        """Everyone whose approval of the request counts, first approver first."""
        with self.engine.connect() as conn:
            return _approvers(conn, request_id)

    def cancel(self, request_id: int, *, user_id: str) -> bool:
        """pending → cancelled, by its requester only; True only for the one caller whose cancel took effect."""
        c = grant_requests.c
        moment = now()
        with self._write(someone_waiting=True) as conn:
            won = _swap(
                conn,
                request_id,
                (c.state == RequestState.PENDING, c.requester_id == user_id),
                state=RequestState.CANCELLED,
                decided_by=user_id,
                decided_at=moment,
                finished_at=moment,
            )
            if won:
                _add_event(conn, request_id, EventKind.CANCELLED, user_id, 1)
        return won

    def expire_pending(self, *, moment: datetime, ttl: timedelta) -> list[int]:
        """pending → expired for each request created `ttl` or more before `moment`; the IDs this caller expired."""
        c = grant_requests.c
        due = (c.state == RequestState.PENDING, c.created_at <= moment - ttl)
        return self._swap_each_due(due, EventKind.EXPIRED, state=RequestState.EXPIRED, finished_at=moment)

    def remind_pending(self, *, moment: datetime, after: timedelta) -> list[int]:
        """Note, once per request, a reminder for each still pending `after` its creation; the IDs this caller noted."""
        c = grant_requests.c
        due = (c.state == RequestState.PENDING, c.reminded_at.is_(None), c.created_at <= moment - after)
        return self._swap_each_due(due, EventKind.REMINDED, reminded_at=moment)

    def _swap_each_due(self, due: tuple[Any, ...], kind: EventKind, **values: Any) -> list[int]:
        """Swap every request matching `due`, each in its own transaction with its event; the IDs this caller won.

        Replicas sweeping at once may find the same requests: the conditions are checked again by each swap.
        """
        with self.engine.connect() as conn:
            candidates = list(conn.execute(select(grant_requests.c.id).where(*due).order_by(grant_requests.c.id)))
        won: list[int] = []
        for (request_id,) in candidates:
            with self._write() as conn:
                if _swap(conn, request_id, due, **values):
                    _add_event(conn, request_id, kind, None, 1)
                    won.append(request_id)
        return won

    def retry_failed(self, request_id: int, *, round: int, user_id: str) -> bool:
        """failed (in `round`) → approved for round + 1, with only the failed workers pending again."""
        c, w = grant_requests.c, worker_grants.c
        with self._write(someone_waiting=True) as conn:
            won = _swap(
                conn,
                request_id,
                (c.state == RequestState.FAILED, c.round == round),
                state=RequestState.APPROVED,
                round=round + 1,
                progress_ts=None,
                finished_at=None,
            )
            if not won:
                return False
            # A worker whose grant may have landed unanswered stays dispatched, so the next round reads it back first.
            unsure = case((w.error_code == OUTCOME_UNKNOWN, w.dispatched_at), else_=None)
            conn.execute(
                update(worker_grants)
                .where(w.request_id == request_id, w.status == WorkerStatus.FAILED)
                .values(
                    status=WorkerStatus.PENDING, error_code=None, error_message=None, hint=None, dispatched_at=unsure
                )
            )
            _add_event(conn, request_id, EventKind.RETRY_APPROVED, user_id, round + 1)
        return True

    def set_message_ts(self, request_id: int, **values: str | None) -> None:
        """Remember the thread messages a request keeps updating (progress_ts, summary_ts)."""
        assert set(values) <= {"progress_ts", "summary_ts"}
        with self._write() as conn:
            conn.execute(update(grant_requests).where(grant_requests.c.id == request_id).values(**values))

    def claim(self, request_id: int, *, owner: str, lease: timedelta, mturk_env: str) -> bool:
        """approved → granting for `owner`, or take over a grant whose previous owner's lease expired.

        Only a request made in `mturk_env`, the environment the owner's process calls: never the other one's.
        """
        c = grant_requests.c
        moment = now()
        return self._swap(
            request_id,
            (c.mturk_env == mturk_env, _unattended(moment)),
            state=RequestState.GRANTING,
            lease_owner=owner,
            lease_expires_at=moment + lease,
        )

    def renew_lease(self, request_id: int, *, owner: str, lease: timedelta) -> bool:
        c = grant_requests.c
        return self._swap(
            request_id,
            (c.state == RequestState.GRANTING, c.lease_owner == owner),
            lease_expires_at=now() + lease,
        )

    def release(self, request_id: int, *, owner: str) -> None:
        """Give up the lease at once (stopping cleanly), so the next claim need not wait for it to expire."""
        c = grant_requests.c
        self._swap(request_id, (c.state == RequestState.GRANTING, c.lease_owner == owner), lease_expires_at=now())

    def pending_page(self, request_id: int, after_position: int, limit: int) -> list[PendingWorker]:
        """The next `limit` pending workers after `after_position`, in order, with what the executor needs of each
        (a 100,000-worker request is granted a page at a time, never held whole)."""
        c = worker_grants.c
        query = (
            select(
                c.position,
                c.worker_id,
                c.integer_value,
                c.operation,
                c.previous_status,
                c.previous_value,
                c.dispatched_at.is_not(None).label("dispatched"),
            )
            .where(c.request_id == request_id, c.position > after_position, c.status == WorkerStatus.PENDING)
            .order_by(c.position)
            .limit(limit)
        )
        held = _SharedHeld()
        with self.engine.connect() as conn:
            return [
                PendingWorker(
                    row.position,
                    WorkerTarget(row.worker_id, row.integer_value, Operation(row.operation)),
                    None if row.previous_status is None else held(row.previous_status, row.previous_value),
                    bool(row.dispatched),
                )
                for row in conn.execute(query)
            ]

    def mark_dispatched_through(self, request_id: int, first_position: int, last_position: int) -> None:
        """Note that calls are about to be made for the pending workers in this range of positions (one page)."""
        c = worker_grants.c
        with self._write() as conn:
            conn.execute(
                update(worker_grants)
                .where(
                    c.request_id == request_id,
                    c.position.between(first_position, last_position),
                    c.status == WorkerStatus.PENDING,
                )
                .values(dispatched_at=now())
            )

    def pending_among(self, request_id: int, worker_ids: Sequence[str]) -> set[str]:
        """Which of these workers are pending in the request (a page of the type's holders, say)."""
        c = worker_grants.c
        query = select(c.worker_id).where(
            c.request_id == request_id, c.worker_id.in_(list(worker_ids)), c.status == WorkerStatus.PENDING
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def drift_checkable_count(self, request_id: int) -> int:
        """Pending workers with a state read at the preview and no call dispatched yet: those the drift check reads."""
        c = worker_grants.c
        query = (
            select(func.count())
            .select_from(worker_grants)
            .where(
                c.request_id == request_id,
                c.status == WorkerStatus.PENDING,
                c.previous_status.is_not(None),
                c.previous_status != HeldStatus.UNREAD.value,
                c.dispatched_at.is_(None),
            )
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def record_outcomes(self, request_id: int, outcomes: Sequence[WorkerOutcome], round: int = 1) -> None:
        """Write a batch of finished workers in one transaction; a worker already final is left as it is."""
        if not outcomes:
            return
        c = worker_grants.c
        statement = (
            update(worker_grants)
            .where(
                c.request_id == bindparam("b_request_id"),
                c.worker_id == bindparam("b_worker_id"),
                c.status == WorkerStatus.PENDING,
            )
            .values(
                status=bindparam("b_status"),
                error_code=bindparam("b_error_code"),
                error_message=bindparam("b_error_message"),
                hint=bindparam("b_hint"),
                updated_at=bindparam("b_updated_at"),
                round=round,
            )
        )
        moment = now()
        rows = [
            {
                "b_request_id": request_id,
                "b_worker_id": o.worker_id,
                "b_status": o.status,
                "b_error_code": o.error_code,
                "b_error_message": o.error_message,
                "b_hint": o.hint,
                "b_updated_at": moment,
            }
            for o in outcomes
        ]
        with self._write() as conn:
            conn.execute(statement, rows)

    def finish(self, request_id: int, *, owner: str) -> RequestState | None:
        """granting → done (every worker granted) or failed (any failed), once no worker is pending.

        Returns the final state for the one caller that made the transition, None for everyone else.
        """
        w, c = worker_grants.c, grant_requests.c
        any_pending = exists().where(w.request_id == c.id, w.status == WorkerStatus.PENDING)
        any_failed = exists().where(w.request_id == c.id, w.status == WorkerStatus.FAILED)
        with self._write() as conn:
            won = _swap(
                conn,
                request_id,
                (c.state == RequestState.GRANTING, c.lease_owner == owner, ~any_pending),
                state=case((any_failed, RequestState.FAILED), else_=RequestState.DONE),
                finished_at=now(),
                lease_owner=None,
                lease_expires_at=None,
            )
            if not won:
                return None
            round_, after, expires_at, finished_at = conn.execute(
                select(c.round, c.expires_after_seconds, c.expires_at, c.finished_at).where(c.id == request_id)
            ).one()
            if after and expires_at is None:  # "30 days of access" count from the end of the first round
                _swap(conn, request_id, (), expires_at=finished_at + timedelta(seconds=after))
            _add_event(conn, request_id, EventKind.FINISHED, None, round_)
        request = self.get(request_id)
        return request.state if request else None

    def outcomes(self, request_id: int) -> list[WorkerOutcome]:
        c = worker_grants.c
        query = select(worker_grants).where(c.request_id == request_id).order_by(c.position)
        with self.engine.connect() as conn:
            return [_to_outcome(row) for row in conn.execute(query).mappings()]

    def iter_outcomes(self, request_id: int, page_rows: int = INSERT_BATCH_ROWS) -> Iterator[WorkerOutcome]:
        """Every worker's outcome in list order, read a page at a time (one short query each, by position), so
        a file of a 100,000-worker request is written without its outcomes all in memory."""
        after = -1
        while True:
            page = self.outcomes_page(request_id, after_position=after, limit=page_rows)
            for _position, outcome in page:
                yield outcome
            if len(page) < page_rows:
                return
            after = page[-1][0]

    def outcomes_page(self, request_id: int, *, after_position: int, limit: int) -> list[tuple[int, WorkerOutcome]]:
        """Up to `limit` (position, outcome) pairs of the request's workers after `after_position`, in order."""
        c = worker_grants.c
        query = (
            select(worker_grants)
            .where(c.request_id == request_id, c.position > after_position)
            .order_by(c.position)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row["position"], _to_outcome(row)) for row in conn.execute(query).mappings()]

    def status_counts(self, request_id: int) -> dict[WorkerStatus, int]:
        c = worker_grants.c
        query = select(c.status, func.count()).where(c.request_id == request_id).group_by(c.status)
        with self.engine.connect() as conn:
            counts = {WorkerStatus(status): n for status, n in conn.execute(query)}
        return {status: counts.get(status, 0) for status in WorkerStatus}

    def resumable_request_ids(self, mturk_env: str) -> list[int]:
        """Approved requests of `mturk_env` nobody is granting: never claimed, or claimed by a process that died."""
        c = grant_requests.c
        query = select(c.id).where(c.mturk_env == mturk_env, _unattended(now())).order_by(c.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def stranded_request_ids(self, mturk_env: str) -> list[int]:
        """Approved requests of another environment nobody is granting, whose thread was not yet told so."""
        c, e = grant_requests.c, request_events.c
        noted = exists().where(e.request_id == c.id, e.kind == EventKind.ENVIRONMENT_MISMATCH)
        query = select(c.id).where(c.mturk_env != mturk_env, _unattended(now()), ~noted).order_by(c.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def note_environment_mismatch(self, request_id: int, *, actor_id: str | None) -> bool:
        """Record, once per request, that a process of the other environment left it as it is; True if new."""
        c, e = grant_requests.c, request_events.c
        # A click waits for this (it is recorded before the ack); a recovery sweep does not.
        with self._write(someone_waiting=actor_id is not None) as conn:
            # Locking the request row makes "insert if none yet" exact when two replicas note it at once.
            round_ = conn.execute(select(c.round).where(c.id == request_id).with_for_update()).scalar_one_or_none()
            noted = select(e.id).where(e.request_id == request_id, e.kind == EventKind.ENVIRONMENT_MISMATCH)
            if round_ is None or conn.execute(noted.limit(1)).first() is not None:
                return False
            _add_event(conn, request_id, EventKind.ENVIRONMENT_MISMATCH, actor_id, round_)
        return True

    def requests(self, states: Iterable[RequestState] | None = None) -> list[GrantRequest]:
        query = select(grant_requests).order_by(grant_requests.c.id)
        if states is not None:
            query = query.where(grant_requests.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [_to_request(row) for row in conn.execute(query).mappings()]

    # Look-ups: read-only, each bounded by a LIMIT, with the total so an answer can say how many it left out.

    def requests_by_requester(self, requester_id: str, limit: int) -> tuple[list[GrantRequest], int]:
        """The newest `limit` requests `requester_id` made, newest first, and how many they made in all."""
        c = grant_requests.c
        mine = c.requester_id == requester_id
        query = select(grant_requests).where(mine).order_by(c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            found = [_to_request(row) for row in conn.execute(query).mappings()]
            total = conn.execute(select(func.count()).select_from(grant_requests).where(mine)).scalar_one()
        return found, total

    def pending_requests(self, limit: int) -> tuple[list[GrantRequest], int]:
        """The oldest `limit` requests waiting for a decision, oldest first, and how many wait in all."""
        c = grant_requests.c
        pending = c.state == RequestState.PENDING
        query = select(grant_requests).where(pending).order_by(c.id).limit(limit)
        with self.engine.connect() as conn:
            found = [_to_request(row) for row in conn.execute(query).mappings()]
            total = conn.execute(select(func.count()).select_from(grant_requests).where(pending)).scalar_one()
        return found, total

    def last_finished_request(self) -> GrantRequest | None:
        """The request that finished granting most recently (done or with failures), for the Home tab's health."""
        c = grant_requests.c
        finished = c.state.in_([RequestState.DONE, RequestState.FAILED]) & c.finished_at.is_not(None)
        query = select(grant_requests).where(finished).order_by(c.finished_at.desc(), c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _to_request(row) if row else None

    def worker_history(self, worker_id: str, limit: int) -> tuple[list[tuple[GrantRequest, WorkerOutcome]], int]:
        """The newest `limit` requests that name `worker_id`, newest first, each with that worker's outcome, and
        how many name them in all.

        worker_grants has no index on worker_id alone (its key starts with request_id), so this reads the
        table; the LIMIT bounds what is returned, not what is read.
        """
        w = worker_grants.c
        query = (
            _requests_with_outcomes().where(w.worker_id == worker_id).order_by(grant_requests.c.id.desc()).limit(limit)
        )
        named = select(func.count()).select_from(worker_grants).where(w.worker_id == worker_id)
        with self.engine.connect() as conn:
            found = [(_to_request(row), _to_outcome(row)) for row in conn.execute(query).mappings()]
            total = conn.execute(named).scalar_one()
        return found, total

    def count_requests_made(self, since: datetime | None, until: datetime) -> int:
        """How many requests were made from `since` (from the first, for None) up to `until`."""
        query = select(func.count()).select_from(grant_requests).where(*_made(since, until))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def export_page(
        self, since: datetime | None, until: datetime, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[GrantRequest, WorkerOutcome]]:
        """Up to `limit` (request, worker outcome) pairs of the requests made from `since` up to `until`, in key
        order (request ID, worker ID) after the key `after`. One short query per page, so an export of any size
        holds no transaction open and no more than a page in memory."""
        w = worker_grants.c
        query = _requests_with_outcomes().where(*_made(since, until)).order_by(w.request_id, w.worker_id).limit(limit)
        if after is not None:
            last_request, last_worker = after
            later_worker = and_(w.request_id == last_request, w.worker_id > last_worker)
            query = query.where(or_(w.request_id > last_request, later_worker))
        with self.engine.connect() as conn:
            return [(_to_request(row), _to_outcome(row)) for row in conn.execute(query).mappings()]

    def status_counts_of(self, request_ids: Sequence[int]) -> dict[int, dict[WorkerStatus, int]]:
        """status_counts for several requests in one query (by the request_id, status index)."""
        c = worker_grants.c
        query = (
            select(c.request_id, c.status, func.count())
            .where(c.request_id.in_(list(request_ids)))
            .group_by(c.request_id, c.status)
        )
        counts: dict[int, dict[WorkerStatus, int]] = {i: dict.fromkeys(WorkerStatus, 0) for i in request_ids}
        with self.engine.connect() as conn:
            for request_id, status, n in conn.execute(query):
                counts[request_id][WorkerStatus(status)] = n
        return counts

    def _swap(self, request_id: int, conditions: tuple[Any, ...], **values: Any) -> bool:
        with self._write() as conn:
            return _swap(conn, request_id, conditions, **values)

    def take_delivery(self, key: str, kind: str) -> bool:
        """Take a delivery by its key: True for the first caller only, on any replica; False for any copy.

        Keys older than DELIVERY_KEYS_KEPT are forgotten in the same transaction.
        """
        moment = now()
        table = deliveries_taken
        dialect_insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = (
            dialect_insert(table)
            .values(key=key, kind=kind, received_at=moment)
            .on_conflict_do_nothing()
            .returning(table.c.key)  # a row back only if inserted (SQLAlchemy gives rowcount -1 for it on psycopg)
        )
        with self._write(someone_waiting=True) as conn:
            conn.execute(delete(table).where(table.c.received_at < moment - DELIVERY_KEYS_KEPT))
            return conn.execute(statement).first() is not None

    # Events: the audit trail, and the outbox the Slack layer delivers from.

    def events(self, request_id: int) -> list[RequestEvent]:
        query = select(request_events).where(request_events.c.request_id == request_id).order_by(request_events.c.id)
        with self.engine.connect() as conn:
            return [_to_event(row) for row in conn.execute(query).mappings()]

    def event(self, event_id: int) -> RequestEvent | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(request_events).where(request_events.c.id == event_id)).mappings().first()
        return _to_event(row) if row else None

    def claim_event(self, event_id: int, *, lease: timedelta) -> RequestEvent | None:
        """Take an undelivered event for delivery; None if it is delivered or someone else is delivering it."""
        e = request_events.c
        moment = now()
        due = or_(
            and_(e.delivery_state == DeliveryState.PENDING, e.next_attempt_at <= moment),
            and_(e.delivery_state == DeliveryState.SENDING, e.lease_expires_at < moment),
        )
        statement = (
            update(request_events)
            .where(e.id == event_id, due)
            .values(delivery_state=DeliveryState.SENDING, lease_expires_at=moment + lease, attempts=e.attempts + 1)
        )
        with self._write() as conn:
            if conn.execute(statement).rowcount != 1:
                return None
        return self.event(event_id)

    def due_event_ids(self, limit: int = 50) -> list[int]:
        """Events to deliver now, oldest first; only a request's oldest undelivered one, so its posts keep order."""
        e = request_events.c
        earlier = request_events.alias("earlier")
        moment = now()
        undelivered = (DeliveryState.PENDING, DeliveryState.SENDING)
        waiting_behind_earlier = exists().where(
            earlier.c.request_id == e.request_id,
            earlier.c.id < e.id,
            earlier.c.delivery_state.in_(undelivered),
        )
        query = (
            select(e.id)
            .where(
                or_(
                    and_(e.delivery_state == DeliveryState.PENDING, e.next_attempt_at <= moment),
                    and_(e.delivery_state == DeliveryState.SENDING, e.lease_expires_at < moment),
                ),
                ~waiting_behind_earlier,
            )
            .order_by(e.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def event_step_done(self, event_id: int, step: str) -> None:
        e = request_events.c
        with self._write() as conn:
            conn.execute(update(request_events).where(e.id == event_id).values(steps_done=e.steps_done + f"{step},"))

    def event_delivered(self, event_id: int) -> None:
        self._set_event(event_id, delivery_state=DeliveryState.DELIVERED, delivered_at=now(), last_error=None)

    def event_retry_later(self, event_id: int, error: str, delay: timedelta) -> None:
        self._set_event(
            event_id, delivery_state=DeliveryState.PENDING, next_attempt_at=now() + delay, last_error=error[:1000]
        )

    def event_failed(self, event_id: int, error: str) -> None:
        self._set_event(event_id, delivery_state=DeliveryState.FAILED, last_error=error[:1000])

    def _set_event(self, event_id: int, **values: Any) -> None:
        with self._write() as conn:
            conn.execute(update(request_events).where(request_events.c.id == event_id).values(**values))


def _insert_request(
    conn: Connection,
    spec: GrantSpec,
    *,
    requester_id: str,
    mturk_env: str,
    qualification_name: str | None,
    preview_owner: str | None,
    lease: timedelta,
    approvals_required: int = 1,
) -> int:
    """Insert a request and its workers (see GrantStore.create_request); its ID."""
    created = now()
    file_current = dict(spec.file_current)
    request_id = conn.execute(
        insert(grant_requests).values(
            requester_id=requester_id,
            qualification_type_id=spec.qualification_type_id,
            qualification_name=qualification_name,
            send_notification=spec.send_notification,
            reason=spec.reason,
            mturk_env=mturk_env,
            state=RequestState.PREVIEWING if preview_owner else RequestState.PENDING,
            worker_count=len(spec.workers),
            created_at=created,
            approvals_required=approvals_required,
            regrant=spec.regrant,
            worker_message=spec.worker_message,
            undo_of=spec.undo_of,
            revoke_count=sum(w.operation is Operation.REVOKE for w in spec.workers),
            expires_after_seconds=int(spec.expires_after.total_seconds()) if spec.expires_after else None,
            expires_at=spec.expires_at,
            lease_owner=preview_owner,
            lease_expires_at=created + lease if preview_owner else None,
        )
    ).inserted_primary_key[0]
    rows = (
        {
            "request_id": request_id,
            "worker_id": w.worker_id,
            "position": i,
            "integer_value": w.integer_value,
            "status": WorkerStatus.PENDING,
            "updated_at": created,
            "file_current": file_current.get(w.worker_id),
            "operation": w.operation.value,
        }
        for i, w in enumerate(spec.workers)
    )
    # In batches, in the same transaction: the row dicts of a 100,000-worker request at once would take
    # about 100 MB (the dicts and the driver's parameter lists), a batch takes a few.
    while batch := list(itertools.islice(rows, INSERT_BATCH_ROWS)):
        conn.execute(insert(worker_grants), batch)
    if not preview_owner:
        _add_event(conn, request_id, EventKind.SUBMITTED, requester_id, 1)
    return int(request_id)


def _changed_by(request_id: int) -> tuple[Any, ...]:
    """The workers a request changed, with the state recorded before it ran (see changed_workers)."""
    c = worker_grants.c
    return (
        c.request_id == request_id,
        c.status == WorkerStatus.GRANTED,
        c.error_code.is_(None),
        c.previous_status.is_not(None),
    )


def _finished_grant() -> Any:
    c = grant_requests.c
    return c.state.in_([RequestState.DONE, RequestState.FAILED])


def _expiry_due(moment: datetime) -> tuple[Any, ...]:
    """A finished grant whose expiry has come by `moment` and that no expiry request revokes yet."""
    c = grant_requests.c
    return (c.expiry_request_id.is_(None), c.expires_at.is_not(None), c.expires_at <= moment, _finished_grant())


def _unattended(moment: datetime) -> Any:
    """Approved and never claimed, or being granted by a process whose lease expired (it died)."""
    c = grant_requests.c
    return or_(
        c.state == RequestState.APPROVED,
        and_(c.state == RequestState.GRANTING, c.lease_expires_at < moment),
    )


def _current_revision(conn: Connection) -> str | None:
    # Alembic's own MigrationContext would say the same, with two INFO log lines that a self-check does not want.
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _has_revision(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


def _approvers(conn: Connection, request_id: int) -> tuple[str, ...]:
    a = request_approvals.c
    query = select(a.approver_id).where(a.request_id == request_id).order_by(a.approved_at, a.approver_id)
    return tuple(conn.execute(query).scalars())


def _requests_with_outcomes() -> Any:
    """Each request row joined with each of its workers' outcome columns, as _to_request and _to_outcome read them:
    the one select that look-ups and the export share, so neither can miss a column the other reads."""
    w = worker_grants.c
    columns = (w.worker_id, w.integer_value, w.status, w.error_code, w.error_message, w.hint, w.operation)
    return select(grant_requests, *columns).join(worker_grants, w.request_id == grant_requests.c.id)


def _swap(conn: Connection, request_id: int, conditions: tuple[Any, ...], **values: Any) -> bool:
    """Compare-and-swap on one request row: True only if this statement changed it."""
    statement = update(grant_requests).where(grant_requests.c.id == request_id, *conditions).values(**values)
    return conn.execute(statement).rowcount == 1


def _add_event(conn: Connection, request_id: int, kind: EventKind, actor_id: str | None, round: int) -> None:
    moment = now()
    conn.execute(
        insert(request_events).values(
            request_id=request_id,
            kind=kind,
            actor_id=actor_id,
            created_at=moment,
            delivery_state=DeliveryState.PENDING,
            steps_done="",
            attempts=0,
            next_attempt_at=moment,
            round=round,
        )
    )


def _to_event(row: Any) -> RequestEvent:
    return RequestEvent(
        id=row["id"],
        request_id=row["request_id"],
        kind=EventKind(row["kind"]),
        actor_id=row["actor_id"],
        created_at=row["created_at"],
        delivery_state=DeliveryState(row["delivery_state"]),
        steps_done=frozenset(step for step in row["steps_done"].split(",") if step),
        attempts=row["attempts"],
        last_error=row["last_error"],
        round=row["round"],
    )


def _made(since: datetime | None, until: datetime) -> tuple[Any, ...]:
    """The conditions of requests made from `since` (any time, for None) up to `until`."""
    made = grant_requests.c.created_at
    return (made <= until,) if since is None else (made >= since, made <= until)


def _to_request(row: Any) -> GrantRequest:
    return GrantRequest(
        id=row["id"],
        requester_id=row["requester_id"],
        qualification_type_id=row["qualification_type_id"],
        qualification_name=row["qualification_name"],
        send_notification=row["send_notification"],
        reason=row["reason"],
        mturk_env=row["mturk_env"],
        state=RequestState(row["state"]),
        worker_count=row["worker_count"],
        created_at=row["created_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        channel_id=row["channel_id"],
        message_ts=row["message_ts"],
        finished_at=row["finished_at"],
        round=row["round"],
        progress_ts=row["progress_ts"],
        summary_ts=row["summary_ts"],
        reminded_at=row["reminded_at"],
        approvals_required=row["approvals_required"],
        decision_reason=row["decision_reason"],
        regrant=bool(row["regrant"]),
        worker_message=row["worker_message"],
        undo_of=row["undo_of"],
        undone_by=row["undone_by"],
        revoke_count=row["revoke_count"] or 0,
        expires_after=timedelta(seconds=row["expires_after_seconds"]) if row["expires_after_seconds"] else None,
        expires_at=row["expires_at"],
        expiry_request_id=row["expiry_request_id"],
        expiry_notice_at=row["expiry_notice_at"],
        expiry_of=row["expiry_of"],
    )


class _SharedHeld:
    """Held states read from the database, one object per distinct state: a 100,000-worker request has a
    handful of states, not 100,000."""

    def __init__(self) -> None:
        self._shared: dict[tuple[str, int | None], Held] = {}

    def __call__(self, status: str, value: int | None) -> Held:
        if (held := self._shared.get((status, value))) is None:
            held = self._shared[(status, value)] = Held(HeldStatus(status), value)
        return held


@dataclass(frozen=True, slots=True)
class PendingWorker:
    """A pending worker as the executor reads it, a page at a time."""

    position: int
    target: WorkerTarget
    previous: Held | None  # what the preview read (None: no preview)
    dispatched: bool  # a call was dispatched and never recorded: in doubt (a process died)


@dataclass(frozen=True)
class RecordedChange:
    """One worker of a stored change set: the score to grant, what they held at the preview, the change."""

    worker_id: str
    integer_value: int | None
    status: WorkerStatus
    previous: Held | None  # None: no preview was read (a request stored before the preview existed)
    change: ChangeKind | None
    file_current: int | None
    operation: Operation = Operation.GRANT


@dataclass(frozen=True)
class PreviewSummary:
    counts: dict[ChangeKind, int]
    examples: dict[ChangeKind, list[RecordedChange]]
    file_mismatches: int  # workers whose worker file's CURRENT- score is not what MTurk holds
    file_mismatch_examples: list[RecordedChange]


def _to_recorded_change(row: Any) -> RecordedChange:
    status = row["previous_status"]
    return RecordedChange(
        worker_id=row["worker_id"],
        integer_value=row["integer_value"],
        status=WorkerStatus(row["status"]),
        previous=Held(HeldStatus(status), row["previous_value"]) if status else None,
        change=ChangeKind(row["change"]) if row["change"] else None,
        file_current=row["file_current"],
        operation=Operation(row["operation"]),
    )


def _to_outcome(row: Any) -> WorkerOutcome:
    return WorkerOutcome(
        worker_id=row["worker_id"],
        integer_value=row["integer_value"],
        status=WorkerStatus(row["status"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        hint=row["hint"],
        operation=Operation(row["operation"]),
    )
