"""The outcome digest the messages are built from: read in SQL (SQLite and PostgreSQL), it is the digest of every
stored outcome, whatever mix of grants, revokes, statuses, scores and failure reasons the request has; its size
does not grow with the request's; and a round is told in Slack without reading every worker's outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.outcome_digest import (
    FAILURE_GROUPS_KEPT,
    IDS_KEPT_PER_FAILURE,
    WORKERS_KEPT,
    OutcomeDigest,
    Scores,
)
from bot.outcome_digest_store import OutcomeDigestStore
from bot.preview import ChangeKind, Held, HeldStatus, WorkerChange
from bot.requests import GrantSpec, Operation, RequestState, WorkerOutcome, WorkerStatus, WorkerTarget
from bot.store import GrantStore
from tests.conftest import APPROVER, QUAL, REQUESTER, WORKERS, RunningApp
from tests.slack_sender import message_text

OWNER = "digest-test"
HOUR = timedelta(hours=1)
# (code, message, hint) of MTurk's answers: a per-call request id and a quoted worker ID are not part of the
# reason; a missing or empty code or message falls back; hint "" is not hint None.
REASONS = [
    ("RequestError", 'Worker "{worker}" does not exist. ({stamp})', "Is it a production ID?"),
    ("ServiceUnavailable", "Rate exceeded ({stamp})", None),
    ("ServiceUnavailable", "Rate exceeded ({stamp})  \n", ""),
    (None, None, None),
    ("", "", None),
    ("AccessDenied", None, "Check the keys"),
    ("AccessDenied", "({stamp})", "Check the keys"),
    ("Throttled", "short (12345)", None),
    ("Code&<>", '<b>&amp; "{worker}"</b>', "&<>"),
    ("E10", 'Lower case "a1b2" stays', None),
    ("E11", "Not at the end (1631094715163)\nmore", None),
]

# One shape of request: stored in `store`, its ID.
Shape = Callable[[GrantStore], int]


@pytest.fixture
def store(store_on_any_database: GrantStore) -> GrantStore:
    return store_on_any_database


def carried_out(
    store: GrantStore,
    targets: list[WorkerTarget],
    skipped: set[int],
    outcome: Callable[[int, WorkerTarget], WorkerOutcome | None],
) -> int:
    """A request of `targets`, previewed (the workers at `skipped` already hold their score, or do not hold what
    is revoked: not called), approved and carried out: worker i's outcome is `outcome(i, target)` (None: pending)."""
    request = store.create_request(
        GrantSpec(QUAL, tuple(targets)),
        requester_id=REQUESTER,
        mturk_env="sandbox",
        qualification_name="Q",
        preview_owner=OWNER,
    )
    store.record_changes(
        request.id, [_change(t, i in skipped) for i, t in enumerate(targets)], regrant=False, owner=OWNER
    )
    assert store.finish_preview(request.id, owner=OWNER)
    assert store.decide(request.id, user_id=APPROVER, approve=True)
    assert store.claim(request.id, owner=OWNER, lease=HOUR, mturk_env="sandbox")
    called = [outcome(i, t) for i, t in enumerate(targets) if i not in skipped]
    store.record_outcomes(request.id, [o for o in called if o is not None])
    return request.id


def _change(target: WorkerTarget, skipped: bool) -> WorkerChange:
    if target.operation is Operation.REVOKE:
        held = Held(HeldStatus.NONE, None) if skipped else Held(HeldStatus.GRANTED, 5)
        return WorkerChange(target.worker_id, None, held, ChangeKind.NOT_HELD if skipped else ChangeKind.REVOKE)
    if skipped:
        value = target.integer_value
        return WorkerChange(target.worker_id, value, Held(HeldStatus.GRANTED, value), ChangeKind.UNCHANGED)
    return WorkerChange(target.worker_id, target.integer_value, Held(HeldStatus.NONE, None), ChangeKind.NEW)


def _failed(i: int, target: WorkerTarget, reason: int) -> WorkerOutcome:
    code, message, hint = REASONS[reason % len(REASONS)]
    text = message.format(worker=target.worker_id, stamp=1631094715163 + i) if message is not None else None
    return WorkerOutcome(
        target.worker_id, target.integer_value, WorkerStatus.FAILED, code, text, hint, target.operation
    )


def _done(target: WorkerTarget) -> WorkerOutcome:
    return WorkerOutcome(target.worker_id, target.integer_value, WorkerStatus.GRANTED, operation=target.operation)


def mixed(store: GrantStore, size: int = 240) -> int:
    """Grants (scores None, 1, 80, 95) and revokes; skipped, failed for every reason in groups of tied sizes,
    granted, and still pending."""
    targets = [
        WorkerTarget(f"A{i:04d}MIXED", None, Operation.REVOKE)
        if i % 5 == 0
        else WorkerTarget(f"A{i:04d}MIXED", [None, 1, 80, 95][i % 4])
        for i in range(size)
    ]

    def outcome(i: int, target: WorkerTarget) -> WorkerOutcome | None:
        if i % 3 == 0:
            return _failed(i, target, i // 3)
        return None if i % 11 == 2 else _done(target)

    return carried_out(store, targets, {i for i in range(size) if i % 7 == 1}, outcome)


def small(store: GrantStore) -> int:
    """Few enough workers called for the summary to list those done, granted and revoked."""
    return mixed(store, size=30)


def many_scores(store: GrantStore) -> int:
    """Hundreds of distinct scores (and a few None), some already held."""
    targets = [WorkerTarget(f"A{i:04d}SCORE", None if i % 50 == 0 else i * 3) for i in range(300)]
    return carried_out(store, targets, {i for i in range(300) if i % 9 == 4}, lambda i, t: _done(t))


def not_previewed(store: GrantStore) -> int:
    """Stored without a preview, nobody called yet."""
    spec = GrantSpec(QUAL, tuple(WorkerTarget(w, 7) for w in WORKERS))
    return store.create_request(spec, requester_id=REQUESTER, mturk_env="sandbox", qualification_name="Q").id


SHAPES: dict[str, Shape] = {"mixed": mixed, "small": small, "many-scores": many_scores, "not-previewed": not_previewed}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_digest_read_in_sql_is_the_digest_of_every_stored_outcome(store: GrantStore, shape: str) -> None:
    request_id = SHAPES[shape](store)
    digest = OutcomeDigestStore(store.engine).digest(request_id)
    assert digest == OutcomeDigest.of(store.outcomes(request_id))
    # The summary's Undo button: whether the request changed anyone, asked without reading who.
    assert store.changed_anyone(request_id) is bool(store.changed_workers(request_id)) is (shape != "not-previewed")
    if shape == "mixed":  # what the comparison covers
        assert digest.failure_reasons == 9 > len(digest.failures) == FAILURE_GROUPS_KEPT
        assert {"Unknown", "AccessDenied"} <= {g.code for g in digest.failures}
        assert digest.count(Operation.GRANT, WorkerStatus.SKIPPED) and digest.count(
            Operation.REVOKE, WorkerStatus.SKIPPED
        )
        assert digest.count(Operation.REVOKE, WorkerStatus.FAILED) and digest.count(status=WorkerStatus.PENDING)
    if shape == "small":
        assert digest.done_workers[Operation.GRANT] and digest.done_workers[Operation.REVOKE]
    if shape == "many-scores":
        assert digest.grant_scores.count > 100 and digest.skipped_grant_scores.count > 10


def test_the_digest_stays_small_whatever_the_request() -> None:
    outcomes = [
        WorkerOutcome(f"A{i:06d}", i, WorkerStatus.FAILED, f"Code{i % 500}", "nope", None) for i in range(20_000)
    ]
    digest = OutcomeDigest.of(outcomes)
    assert len(digest.workers) == WORKERS_KEPT and digest.done_workers == {}
    assert digest.failure_reasons == 500 and len(digest.failures) == FAILURE_GROUPS_KEPT
    assert all(g.count == 40 and len(g.worker_ids) == IDS_KEPT_PER_FAILURE for g in digest.failures)
    assert digest.scores == Scores(20_000, 0, 19_999)  # no values kept: only how many and their range


def test_a_round_is_told_without_reading_every_workers_outcome(
    app: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def every_outcome(request_id: int) -> list[WorkerOutcome]:
        raise AssertionError("the messages read every worker's outcome")

    monkeypatch.setattr(app.grant_qual.store, "outcomes", every_outcome)
    held, unknown, new = WORKERS
    app.mturk.preset_grant(QUAL, held, 7)
    app.mturk.unknown_workers.add(unknown)
    app.request(f"{QUAL} {' '.join(WORKERS)} value=7")
    shown = message_text(app.approval_message())
    assert f"*Workers (3)*\n`{held}`, `{unknown}`, `{new}`" in shown and "*Value*\n7" in shown
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.FAILED
    summary = message_text(app.summary()).replace("&quot;", '"')
    assert "to 1 of 2 worker(s); 1 failed" in summary and "1 already held 7 and were not called." in summary
    assert '1 × The value "…" is not valid for the parameter WorkerId.' in summary and f"`{unknown}`" in summary
    assert f"*Granted*\n`{new}`" in summary
