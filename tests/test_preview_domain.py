"""The preview's domain, without Slack or HTTP: classification, the read strategy by cost, drift."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from bot.mturk import MTurkUnavailable, QualificationScore, WorkerNotKnown
from bot.preview import (
    CHANGED_SINCE_PREVIEW,
    ChangeKind,
    Held,
    HeldStatus,
    Preview,
    changes,
    classify,
    drifted,
    read_current,
)
from bot.requests import EventKind, GrantSpec, RequestState, WorkerStatus, WorkerTarget
from bot.store import GrantStore, create_database_engine

TYPE = "3TYPE"


class Reader:
    """The gateway's two reads over a dict of holders, counting calls as MTurk would bill them."""

    def __init__(self, holders: dict[str, tuple[int, str]], unknown: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.holders = holders
        self.unknown = unknown
        self.score_calls = 0
        self.page_calls = 0
        self.failing_pages = False

    def qualification_score(self, qualification_type_id: str, worker_id: str) -> QualificationScore | None:
        self.score_calls += 1
        if worker_id in self.unknown:
            raise WorkerNotKnown(worker_id)
        if worker_id not in self.holders:
            return None
        value, status = self.holders[worker_id]
        return QualificationScore(worker_id, value, status, None)

    def holder_pages(self, qualification_type_id: str, status: str = "Granted") -> Iterator[list[QualificationScore]]:
        listed = [QualificationScore(w, v, s, None) for w, (v, s) in self.holders.items() if s == status]
        for start in range(0, max(len(listed), 1), 100):
            self.page_calls += 1
            if self.failing_pages:
                raise MTurkUnavailable("MTurk answered ServiceUnavailable")
            yield listed[start : start + 100]


def ids(n: int, prefix: str = "AW") -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(n)]


def test_classify_each_kind() -> None:
    assert classify("A1", 80, Held(HeldStatus.NONE)).kind is ChangeKind.NEW
    assert classify("A1", 80, Held(HeldStatus.GRANTED, 50)).kind is ChangeKind.CHANGED
    assert classify("A1", 80, Held(HeldStatus.GRANTED, 80)).kind is ChangeKind.UNCHANGED
    assert classify("A1", None, Held(HeldStatus.GRANTED, 1)).kind is ChangeKind.UNCHANGED  # MTurk's default is 1
    assert classify("A1", 80, Held(HeldStatus.REVOKED, 80)).kind is ChangeKind.REVOKED_EARLIER
    assert classify("A1", 80, Held(HeldStatus.UNKNOWN_WORKER)).kind is ChangeKind.UNKNOWN_WORKER
    assert classify("A1", 80, Held(HeldStatus.UNREAD)).kind is ChangeKind.UNREAD


def test_preview_counts_and_keeps_three_examples_per_kind() -> None:
    targets = [WorkerTarget(w, 80) for w in ids(10)]
    held = {w: Held(HeldStatus.GRANTED, 50) for w in ids(10)[:5]}
    held.update({w: Held(HeldStatus.NONE) for w in ids(10)[5:]})
    preview = Preview.of(changes(targets, held))
    assert preview.counts[ChangeKind.CHANGED] == 5 and preview.counts[ChangeKind.NEW] == 5
    assert [c.worker_id for c in preview.examples[ChangeKind.CHANGED]] == ids(3)


def test_a_small_request_reads_each_worker() -> None:
    reader = Reader({"AW000000": (50, "Granted")}, unknown={"AW000001"})
    found = read_current(reader, TYPE, ids(3))
    assert found.strategy == "per-worker" and reader.score_calls == 3 and reader.page_calls == 0
    assert found.held == {
        "AW000000": Held(HeldStatus.GRANTED, 50),
        "AW000001": Held(HeldStatus.UNKNOWN_WORKER),
        "AW000002": Held(HeldStatus.NONE),
    }


def test_a_big_request_against_few_holders_lists_them() -> None:
    holders = {w: (50, "Granted") for w in ids(150, "AH")} | {"AW000001": (80, "Revoked")}
    reader = Reader(holders)
    found = read_current(reader, TYPE, ids(500))
    # 2 pages of Granted holders and 1 of Revoked, instead of 500 reads.
    assert found.strategy == "holders" and reader.page_calls == 3 and reader.score_calls == 0 and found.calls == 3
    assert found.held["AW000001"] == Held(HeldStatus.REVOKED, 80)
    assert found.held["AW000002"] == Held(HeldStatus.NONE)


def test_a_big_request_against_many_holders_gives_up_the_listing_at_as_many_pages_as_workers() -> None:
    holders = {w: (50, "Granted") for w in ids(5000, "AH")} | {"AW000007": (60, "Granted")}
    reader = Reader(holders)
    found = read_current(reader, TYPE, ids(30))
    assert reader.page_calls == 30 and reader.score_calls == 30 and found.calls == 60
    assert found.held["AW000007"] == Held(HeldStatus.GRANTED, 60)


def test_a_listing_that_fails_falls_back_to_reading_each_worker() -> None:
    reader = Reader({"AW000003": (9, "Granted")})
    reader.failing_pages = True
    found = read_current(reader, TYPE, ids(25))
    assert reader.score_calls == 25 and found.held["AW000003"] == Held(HeldStatus.GRANTED, 9)


def test_drift_flags_moved_workers_and_leaves_the_others() -> None:
    recorded = {
        "AW000000": Held(HeldStatus.GRANTED, 50),
        "AW000001": Held(HeldStatus.NONE),
        "AW000002": Held(HeldStatus.UNKNOWN_WORKER),
    }
    reader = Reader({"AW000000": (60, "Granted")}, unknown={"AW000002"})
    targets = [WorkerTarget(w, 80) for w in ids(4)]  # AW000003: no preview recorded, so not read
    moved, now = drifted(recorded, targets, lambda worker_ids: read_current(reader, TYPE, worker_ids).held)
    assert [o.worker_id for o in moved] == ["AW000000"]
    assert moved[0].status is WorkerStatus.FAILED and moved[0].error_code == CHANGED_SINCE_PREVIEW
    assert moved[0].error_message == "was 50 at the preview, is 60 now; left as it is"
    assert now == {"AW000000": Held(HeldStatus.GRANTED, 60)}
    assert reader.score_calls == 3


def test_a_request_stored_without_a_preview_has_no_change_and_no_recorded_states(database_url: str) -> None:
    """Rows from before migration 0006 (or stored pending at once) are granted as they always were."""
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    spec = GrantSpec(TYPE, (WorkerTarget("A1OLD", 4),))
    request = store.create_request(spec, requester_id="U0REQ", mturk_env="sandbox", qualification_name="Q")
    assert request.state is RequestState.PENDING and not request.regrant
    assert [e.kind for e in store.events(request.id)] == [EventKind.SUBMITTED]
    assert store.preview_summary(request.id) is None
    assert [p.previous for p in store.pending_page(request.id, -1, 10)] == [None]
    assert [c.change for c in store.changes(request.id)] == [None]


def test_a_previewing_request_is_posted_once_by_the_previewer_holding_it(database_url: str) -> None:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    spec = GrantSpec(TYPE, (WorkerTarget("A1NEW", 4), WorkerTarget("A1HAS", 4)))
    request = store.create_request(
        spec, requester_id="U0REQ", mturk_env="sandbox", qualification_name="Q", preview_owner="first"
    )
    assert request.state is RequestState.PREVIEWING and store.events(request.id) == []
    assert not store.claim_preview(request.id, owner="second", lease=timedelta(seconds=60), mturk_env="sandbox")
    held = {"A1NEW": Held(HeldStatus.NONE), "A1HAS": Held(HeldStatus.GRANTED, 4)}
    store.record_changes(request.id, changes(spec.workers, {}), regrant=False, owner="second")  # not its own
    assert store.changes(request.id)[0].change is None
    store.record_changes(request.id, changes(spec.workers, held), regrant=False, owner="first")
    assert not store.finish_preview(request.id, owner="second")
    assert store.finish_preview(request.id, owner="first")
    assert not store.finish_preview(request.id, owner="first")  # once
    assert [e.kind for e in store.events(request.id)] == [EventKind.SUBMITTED]
    assert {o.worker_id: o.status for o in store.outcomes(request.id)} == {
        "A1NEW": WorkerStatus.PENDING,
        "A1HAS": WorkerStatus.SKIPPED,
    }
    summary = store.preview_summary(request.id)
    assert summary is not None and summary.counts[ChangeKind.NEW] == 1 and summary.counts[ChangeKind.UNCHANGED] == 1


def test_an_abandoned_preview_is_read_again_only_in_its_own_environment(database_url: str) -> None:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    spec = GrantSpec(TYPE, (WorkerTarget("A1NEW", 4),))
    request = store.create_request(
        spec,
        requester_id="U0REQ",
        mturk_env="sandbox",
        qualification_name="Q",
        preview_owner="died",
        lease=timedelta(seconds=-1),  # its previewer's lease has lapsed
    )
    lease = timedelta(seconds=60)
    assert store.abandoned_preview_ids("production") == []
    assert not store.claim_preview(request.id, owner="production-process", lease=lease, mturk_env="production")
    assert store.abandoned_preview_ids("sandbox") == [request.id]
    assert store.claim_preview(request.id, owner="sandbox-process", lease=lease, mturk_env="sandbox")
