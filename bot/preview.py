"""The preview: what a grant request would change, per worker, read from MTurk before anyone approves it.

A request is a change set: per worker, the score to grant and the state MTurk held before (recorded here,
at the preview). This module reads the current states with the cheaper of two reads, classifies each
worker's change, and, when the grant runs, finds the workers whose state moved since the preview (drift),
so the executor leaves them as they are instead of silently overwriting them. Plain Python over the
gateway's two reads; nothing here knows Slack or the store.

Cost of the read, in calls: listing the type's holders costs one call per page of 100 (Granted, then
Revoked); reading per worker costs one call per worker. The holders' count is not known in advance, so the
listing is abandoned for per-worker reads as soon as the pages read reach the number of workers: the worst
case is about twice the cheaper read, the usual case the cheaper read itself.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.mturk import MTurkUnavailable, QualificationScore, WorkerNotKnown
from bot.requests import Operation, WorkerOutcome, WorkerStatus, WorkerTarget

# At most this many workers are read one by one without trying the holders' listing first.
SMALL_REQUEST = 20
PAGE_SIZE = 100
EXAMPLES = 3
CHANGED_SINCE_PREVIEW = "ChangedSincePreview"


class HeldStatus(StrEnum):
    """What MTurk said about a worker's qualification at a read (stored as worker_grants.previous_status)."""

    NONE = "none"  # MTurk knows the worker, who does not hold the type
    GRANTED = "Granted"
    REVOKED = "Revoked"
    UNKNOWN_WORKER = "unknown_worker"  # MTurk does not know the worker ID in this environment
    UNREAD = "unread"  # MTurk could not say (it kept failing): granted as requested, without a preview


class ChangeKind(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REVOKED_EARLIER = "revoked_earlier"
    UNKNOWN_WORKER = "unknown_worker"
    UNREAD = "unread"
    REVOKE = "revoke"  # a revoke of a worker who holds it
    NOT_HELD = "not_held"  # a revoke of a worker who does not hold it (or had it revoked): not called


@dataclass(frozen=True)
class Held:
    """A worker's qualification as read: its status, and its score when they hold (or held) it."""

    status: HeldStatus
    value: int | None = None

    def text(self) -> str:
        if self.status is HeldStatus.GRANTED:
            return str(self.value)
        if self.status is HeldStatus.REVOKED:
            return f"revoked ({self.value})"
        return {HeldStatus.NONE: "no score", HeldStatus.UNKNOWN_WORKER: "unknown worker"}.get(self.status, "not read")


NOT_HELD = Held(HeldStatus.NONE)


@dataclass(frozen=True)
class WorkerChange:
    """One worker of the change set: the score to grant, what they held at the preview, and the kind of change."""

    worker_id: str
    new_value: int | None  # None: MTurk's default, 1
    previous: Held
    kind: ChangeKind

    @property
    def target(self) -> int:
        return 1 if self.new_value is None else self.new_value


@dataclass
class Preview:
    """A request's changes, counted per kind, with the first few workers of each kind as examples."""

    counts: dict[ChangeKind, int] = field(default_factory=lambda: dict.fromkeys(ChangeKind, 0))
    examples: dict[ChangeKind, list[WorkerChange]] = field(default_factory=dict)

    def add(self, change: WorkerChange) -> None:
        self.counts[change.kind] += 1
        shown = self.examples.setdefault(change.kind, [])
        if len(shown) < EXAMPLES:
            shown.append(change)

    @classmethod
    def of(cls, changes: Iterable[WorkerChange]) -> Preview:
        preview = cls()
        for change in changes:
            preview.add(change)
        return preview


class ScoreReader(Protocol):
    """The gateway's two reads (bot/mturk.py MTurkGateway)."""

    def qualification_score(self, qualification_type_id: str, worker_id: str) -> QualificationScore | None: ...

    def holder_pages(
        self, qualification_type_id: str, status: str = "Granted"
    ) -> Iterator[list[QualificationScore]]: ...


@dataclass(frozen=True)
class ReadProgress:
    calls: int
    workers_read: int
    worker_count: int


@dataclass
class CurrentStates:
    """What a read found, per worker, and how: the strategy that answered and the calls it made."""

    held: dict[str, Held]
    strategy: str  # "per-worker" or "holders"
    calls: int


ProgressCallback = Callable[[ReadProgress], None]


def classify(
    worker_id: str, new_value: int | None, previous: Held, operation: Operation = Operation.GRANT
) -> WorkerChange:
    """The kind of change granting `new_value` (or revoking) makes to a worker who holds `previous`."""
    if operation is Operation.REVOKE:
        if previous.status is HeldStatus.GRANTED:
            return WorkerChange(worker_id, None, previous, ChangeKind.REVOKE)
        if previous.status is HeldStatus.UNREAD:
            return WorkerChange(worker_id, None, previous, ChangeKind.UNREAD)  # revoked as requested
        return WorkerChange(worker_id, None, previous, ChangeKind.NOT_HELD)  # nothing to revoke: a no-op
    target = 1 if new_value is None else new_value
    kind = {
        HeldStatus.NONE: ChangeKind.NEW,
        HeldStatus.REVOKED: ChangeKind.REVOKED_EARLIER,
        HeldStatus.UNKNOWN_WORKER: ChangeKind.UNKNOWN_WORKER,
        HeldStatus.UNREAD: ChangeKind.UNREAD,
    }.get(previous.status)
    if kind is None:
        kind = ChangeKind.UNCHANGED if previous.value == target else ChangeKind.CHANGED
    return WorkerChange(worker_id, new_value, previous, kind)


def restoring(worker_id: str, before: Held) -> WorkerTarget | None:
    """What puts a worker back to the state recorded before a request changed them (its undo): the previous score
    granted again, or the qualification revoked where they had none (or had it revoked); None when no state was
    read (nothing known to restore)."""
    if before.status is HeldStatus.GRANTED:
        return WorkerTarget(worker_id, before.value, Operation.GRANT)
    if before.status in (HeldStatus.NONE, HeldStatus.REVOKED):
        return WorkerTarget(worker_id, None, Operation.REVOKE)
    return None


def changes(targets: Sequence[WorkerTarget], held: dict[str, Held]) -> list[WorkerChange]:
    return [
        classify(t.worker_id, t.integer_value, held.get(t.worker_id, Held(HeldStatus.UNREAD)), t.operation)
        for t in targets
    ]


def read_current(
    reader: ScoreReader,
    qualification_type_id: str,
    worker_ids: Sequence[str],
    *,
    concurrency: int = 8,
    on_progress: ProgressCallback | None = None,
) -> CurrentStates:
    """Each worker's current state for the type, with the cheaper read (see the module docstring).

    MTurkAccessError is raised (nothing can be read); a worker MTurk keeps failing to answer for is UNREAD.
    """
    progress = on_progress or (lambda _: None)
    if len(worker_ids) > SMALL_REQUEST:
        try:
            listed, pages = _read_holders(reader, qualification_type_id, worker_ids, progress)
        except MTurkUnavailable:
            listed, pages = None, 0  # a page MTurk kept failing: each worker's own read may still answer
        if listed is not None:
            return listed
        per_worker = _read_each(reader, qualification_type_id, worker_ids, concurrency, progress)
        per_worker.calls += pages
        per_worker.strategy = "holders, then per-worker"
        return per_worker
    return _read_each(reader, qualification_type_id, worker_ids, concurrency, progress)


def _read_holders(
    reader: ScoreReader,
    qualification_type_id: str,
    worker_ids: Sequence[str],
    progress: ProgressCallback,
) -> tuple[CurrentStates | None, int]:
    """Every wanted worker's state from the type's holders, and the pages read; None once the pages read reach
    len(worker_ids)."""
    wanted = set(worker_ids)
    held: dict[str, Held] = {}
    calls = 0
    for status in (HeldStatus.GRANTED, HeldStatus.REVOKED):
        for page in reader.holder_pages(qualification_type_id, status.value):
            calls += 1
            for score in page:
                if score.worker_id in wanted:
                    held[score.worker_id] = Held(status, score.integer_value)
            progress(ReadProgress(calls, 0, len(worker_ids)))
            if calls >= len(worker_ids):
                return None, calls  # reading each worker is cheaper than the pages still to come
    # Not listed: the worker holds nothing, or MTurk does not know them (the listing cannot tell which).
    return CurrentStates({w: held.get(w, NOT_HELD) for w in worker_ids}, "holders", calls), calls


def _read_each(
    reader: ScoreReader,
    qualification_type_id: str,
    worker_ids: Sequence[str],
    concurrency: int,
    progress: ProgressCallback,
) -> CurrentStates:
    """One GetQualificationScore per worker, a few at a time (the gateway's pacer spaces them)."""
    counter = threading.Lock()
    done = [0]

    def read(worker_id: str) -> Held:
        try:
            score = reader.qualification_score(qualification_type_id, worker_id)
        except WorkerNotKnown:
            found = Held(HeldStatus.UNKNOWN_WORKER)
        except MTurkUnavailable:
            found = Held(HeldStatus.UNREAD)
        else:
            found = NOT_HELD if score is None else Held(HeldStatus(score.status), score.integer_value)
        with counter:
            done[0] += 1
            count = done[0]
        progress(ReadProgress(count, count, len(worker_ids)))
        return found

    if len(worker_ids) <= 1 or concurrency <= 1:
        found = [read(w) for w in worker_ids]
    else:
        with ThreadPoolExecutor(min(concurrency, len(worker_ids)), thread_name_prefix="preview-read") as pool:
            found = list(pool.map(read, worker_ids))
    return CurrentStates(dict(zip(worker_ids, found, strict=True)), "per-worker", len(worker_ids))


def drifted(
    recorded: dict[str, Held],
    targets: Sequence[WorkerTarget],
    read: Callable[[list[str]], dict[str, Held]],
) -> tuple[list[WorkerOutcome], dict[str, Held]]:
    """The workers whose state moved since the preview, as FAILED outcomes that say so, with what they hold now.

    Only workers with a recorded state are read (a request without a preview grants as before), by `read`; a
    worker MTurk cannot read now is granted (the preview's state stands). `read`'s MTurkAccessError propagates.
    """
    checked = [t for t in targets if t.worker_id in recorded and recorded[t.worker_id].status is not HeldStatus.UNREAD]
    if not checked:
        return [], {}
    now = read([t.worker_id for t in checked])
    moved: list[WorkerOutcome] = []
    current: dict[str, Held] = {}
    for target in checked:
        before, after = recorded[target.worker_id], now.get(target.worker_id, Held(HeldStatus.UNREAD))
        if after.status is HeldStatus.UNREAD or _same(before, after):
            continue
        current[target.worker_id] = after
        moved.append(
            WorkerOutcome(
                target.worker_id,
                target.integer_value,
                WorkerStatus.FAILED,
                CHANGED_SINCE_PREVIEW,
                f"was {before.text()} at the preview, is {after.text()} now; left as it is",
                "Someone changed this worker's qualification after the request was made. Retry failed "
                + (
                    "revokes it anyway."
                    if target.operation is Operation.REVOKE
                    else "grants the requested score anyway."
                ),
            )
        )
    return moved, current


class PagedDriftCheck:
    """The drift check of a request granted a page at a time: which of each page's workers moved since the preview.

    The cheaper read is chosen once for the whole request (`checked` workers in all), not per page: the type's
    holders are listed once, keeping only this request's workers (`ours` says which of a page of holders
    those are, so memory follows the request, not the type's holders), when that costs fewer calls than
    reading each worker; otherwise each page's workers are read one by one when the page comes.
    """

    def __init__(
        self,
        reader: ScoreReader,
        qualification_type_id: str,
        checked: int,
        ours: Callable[[list[str]], set[str]],
        *,
        concurrency: int = 8,
    ) -> None:
        self._reader = reader
        self._type = qualification_type_id
        self._checked = checked
        self._ours = ours
        self._concurrency = concurrency
        self._listed: dict[str, Held] | None = None
        self._chosen = False

    def page(
        self, recorded: dict[str, Held], targets: Sequence[WorkerTarget]
    ) -> tuple[list[WorkerOutcome], dict[str, Held]]:
        """drifted() for one page; raises MTurkAccessError like any read."""
        if not self._chosen:
            self._chosen = True
            if self._checked > SMALL_REQUEST:
                self._listed = self._list_holders()
        return drifted(recorded, targets, self._read)

    def _read(self, worker_ids: list[str]) -> dict[str, Held]:
        if self._listed is not None:
            return {w: self._listed.get(w, NOT_HELD) for w in worker_ids}
        return _read_each(self._reader, self._type, worker_ids, self._concurrency, lambda _: None).held

    def _list_holders(self) -> dict[str, Held] | None:
        """This request's workers among the type's holders; None once the pages read reach the workers to check.

        The Granted and the Revoked holders are listed side by side: for a small request each is one page, and
        reading them one after the other would hold up its first grant by a whole MTurk round trip.
        """
        calls = itertools.count(1)
        enough = threading.Event()

        def listed(status: HeldStatus) -> dict[str, Held] | None:
            held: dict[str, Held] = {}
            shared: dict[int, Held] = {}
            for page in self._reader.holder_pages(self._type, status.value):
                values = {score.worker_id: score.integer_value for score in page}
                for worker_id in self._ours(list(values)):
                    value = values[worker_id]
                    held[worker_id] = shared.setdefault(value, Held(status, value))
                if next(calls) >= self._checked or enough.is_set():
                    enough.set()
                    return None
            return held

        try:
            with ThreadPoolExecutor(2, thread_name_prefix="drift-listing") as pool:
                granted, revoked = pool.map(listed, (HeldStatus.GRANTED, HeldStatus.REVOKED))
        except MTurkUnavailable:
            return None  # a page MTurk kept failing: each worker's own read may still answer
        if granted is None or revoked is None:
            return None
        return revoked | granted


def _same(before: Held, after: Held) -> bool:
    # The holders' listing cannot tell an unknown worker from one without the type: both hold nothing.
    nothing = {HeldStatus.NONE, HeldStatus.UNKNOWN_WORKER}
    if before.status in nothing and after.status in nothing:
        return True
    return before == after
