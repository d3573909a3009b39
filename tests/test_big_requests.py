"""Big requests stream through the store: workers inserted in batches, the results file written a page at a time."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from sqlalchemy import event

from bot import executor as executor_module
from bot import store as store_module
from bot.preview import NOT_HELD, ChangeKind, Held, HeldStatus, WorkerChange
from bot.reports import write_results_csv
from bot.requests import GrantSpec, RequestState, WorkerOutcome, WorkerStatus, WorkerTarget
from bot.store import GrantStore, create_database_engine
from tests.conftest import APPROVER, QUAL, QUAL_NAME, REQUESTER, start_app
from tests.fakes.mturk import FakeMTurk
from tests.fakes.slack import FakeSlack
from tests.slack_sender import message_text, modal_values
from tests.test_worker_file_upload import batch_results_csv


def new_store(database_url: str) -> GrantStore:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    return store


def worker_ids(n: int) -> list[str]:
    return [f"A{i:013d}" for i in range(n)]


def test_workers_are_inserted_in_batches(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "INSERT_BATCH_ROWS", 100)
    store = new_store(database_url)
    batches: list[int] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO WORKER_GRANTS"):
            batches.append(len(parameters) if executemany else 1)

    ids = worker_ids(250)
    request = store.create_request(
        GrantSpec(QUAL, tuple(WorkerTarget(w, 5) for w in ids)),
        requester_id=REQUESTER,
        mturk_env="sandbox",
        qualification_name=QUAL_NAME,
    )
    assert batches == [100, 100, 50]
    pending = store.pending_page(request.id, -1, 1000)
    assert [p.target.worker_id for p in pending] == ids  # in order, all in one request
    store.engine.dispose()


class CountingStore:
    """The store's outcome pages, counted as they are asked for."""

    def __init__(self, store: GrantStore) -> None:
        self.store = store
        self.pages = 0

    def outcomes_page(self, *args: Any, **options: Any) -> Any:
        self.pages += 1
        return self.store.outcomes_page(*args, **options)


def test_results_are_read_a_page_at_a_time_as_they_are_written(database_url: str) -> None:
    store = new_store(database_url)
    ids = worker_ids(23)
    request = store.create_request(
        GrantSpec(QUAL, tuple(WorkerTarget(w, 5) for w in ids)),
        requester_id=REQUESTER,
        mturk_env="sandbox",
        qualification_name=QUAL_NAME,
    )
    store.record_outcomes(request.id, [WorkerOutcome(w, 5, WorkerStatus.GRANTED) for w in ids[:20]])
    counting = CountingStore(store)
    outcomes = GrantStore.iter_outcomes(counting, request.id, page_rows=5)  # type: ignore[arg-type]
    assert counting.pages == 0
    first = [next(outcomes) for _ in range(5)]
    assert counting.pages == 1 and [o.worker_id for o in first] == ids[:5]
    out = io.StringIO()
    write_results_csv(outcomes, out)
    assert counting.pages == 5  # pages of 5, 5, 5, 5 and 3
    header, *rows = out.getvalue().splitlines()
    assert header.startswith("WorkerId,") and [r.split(",")[0] for r in rows] == ids[5:]
    assert sum(",granted," in r for r in rows) == 15 and sum(",pending," in r for r in rows) == 3
    store.engine.dispose()


def test_preview_changes_are_read_a_page_at_a_time(database_url: str) -> None:
    store = new_store(database_url)
    ids = worker_ids(12)
    request = store.create_request(
        GrantSpec(QUAL, tuple(WorkerTarget(w, 5) for w in ids), file_current=((ids[3], 4),)),
        requester_id=REQUESTER,
        mturk_env="sandbox",
        qualification_name=QUAL_NAME,
    )
    selects: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM WORKER_GRANTS" in statement.upper():
            selects.append(statement)

    changes = store.iter_changes(request.id, page_rows=5)
    assert [next(changes).worker_id for _ in range(5)] == ids[:5] and len(selects) == 1
    assert [c.worker_id for c in changes] == ids[5:] and len(selects) == 3  # pages of 5, 5 and 2
    assert store.has_file_current(request.id)
    store.engine.dispose()


def test_the_states_read_back_for_the_drift_check_are_shared_per_distinct_state(database_url: str) -> None:
    store = new_store(database_url)
    ids = worker_ids(6)
    request = store.create_request(
        GrantSpec(QUAL, tuple(WorkerTarget(w, 5) for w in ids)),
        requester_id=REQUESTER,
        mturk_env="sandbox",
        qualification_name=QUAL_NAME,
        preview_owner="me",
    )
    held = [NOT_HELD, NOT_HELD, Held(HeldStatus.GRANTED, 3), Held(HeldStatus.GRANTED, 3), Held(HeldStatus.GRANTED, 4)]
    changes = [WorkerChange(w, 5, h, ChangeKind.NEW) for w, h in zip(ids, held, strict=False)]
    store.record_changes(request.id, changes, regrant=False, owner="me")
    page = store.pending_page(request.id, -1, 10)
    states = {p.target.worker_id: p.previous for p in page if p.previous is not None}  # the sixth was not read
    assert states == dict(zip(ids, held, strict=False))
    assert states[ids[0]] is states[ids[1]] and states[ids[2]] is states[ids[3]]
    assert len({id(h) for h in states.values()}) == 3
    store.engine.dispose()


def test_fifteen_thousand_workers_from_an_uploaded_file_each_granted_once_with_full_results(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INSERT_BATCH_ROWS", 3_000)  # several batches and pages for 15,000
    app = start_app(
        fake_slack,
        fake_mturk,
        database_url,
        MAX_WORKERS_PER_REQUEST="15000",
        MTURK_MAX_TPS="10000",
        MTURK_MAX_CONCURRENCY="20",
    )
    try:
        ids = worker_ids(15_000)
        file = fake_slack.host_file("F0BIG", "Batch_9_batch_results.csv", batch_results_csv(ids))
        metadata = json.dumps({"response_url": fake_slack.response_url("upload")})
        values = modal_values(QUAL, value="7", files=[file])
        reply = app.sender.submit_view(REQUESTER, values, private_metadata=metadata)
        assert reply.status == 200 and reply.body == ""
        assert "Workers (15000)" in message_text(app.approval_message(timeout=60))
        app.click(APPROVER, "approve_request")
        assert app.wait_final(timeout=120).state is RequestState.DONE
        assert fake_mturk.grant_counts() == {w: 1 for w in ids}

        def results() -> list[str]:
            return [
                bytes(u["bytes"]).decode()
                for u in fake_slack.uploaded_files.values()
                if u.get("completed") and u["filename"].endswith("-round-1-results.csv")
            ]

        def preview() -> list[str]:
            return [
                bytes(u["bytes"]).decode()
                for u in fake_slack.uploaded_files.values()
                if u.get("completed") and u["filename"].endswith("-preview.csv")
            ]

        (preview_file,) = fake_slack.wait_for(preview, timeout=30)
        assert [r.split(",")[0] for r in preview_file.splitlines()[1:]] == ids

        (content,) = fake_slack.wait_for(results, timeout=30)
        header, *rows = content.splitlines()
        assert header == "WorkerId,IntegerValue,Status,ErrorCode,ErrorMessage,Hint"
        assert [r.split(",")[0] for r in rows] == ids and all(r.endswith(",7,granted,,,") for r in rows)
    finally:
        app.stop()


def wide_batch_results_csv(ids: list[str]) -> bytes:
    """A batch results CSV with a long answer per row (about 450 bytes), as a survey's would be."""
    header = "HITId,AssignmentId,WorkerId,Answer.feedback\n"
    rows = [f"3H{i:018d},3A{i:018d},{w},{'x' * 400}\n" for i, w in enumerate(ids)]
    return (header + "".join(rows)).encode()


def test_the_file_size_cap_grows_with_the_workers_a_request_may_hold(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    content = wide_batch_results_csv(worker_ids(13_000))
    assert 5 * 1024 * 1024 < len(content) < 10 * 1024 * 1024
    for max_workers, accepted in (("10000", False), ("20000", True)):
        app = start_app(fake_slack, fake_mturk, database_url, MAX_WORKERS_PER_REQUEST=max_workers)
        try:
            file = fake_slack.host_file(f"F0WIDE{max_workers}", "Batch_7_batch_results.csv", content)
            answer = app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file]))
            if accepted:
                assert answer.body == ""
                assert "Workers (13000)" in message_text(app.approval_message(timeout=60))
            else:
                assert answer.json()["errors"]["workers_file"] == "The file is larger than 5 MB; split it."
                assert app.grant_qual.store.requests() == []
        finally:
            app.stop()


def test_a_request_is_granted_a_page_at_a_time_with_one_drift_read_for_all_pages(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor_module, "PAGE_SIZE", 10)
    ids = worker_ids(45)
    for worker_id in ids[:30]:  # holders: the drift check lists them rather than reading 45 workers one by one
        fake_mturk.preset_grant(QUAL, worker_id, 2)
    app = start_app(fake_slack, fake_mturk, database_url)
    try:
        app.request(f"{QUAL} {' '.join(ids)} value=5")
        app.approval_message()
        fake_mturk.preset_grant(QUAL, ids[37], 9)  # someone changes a worker of the fourth page meanwhile
        pages: list[int] = []
        store = app.grant_qual.store
        read_page = store.pending_page

        def counted_page(request_id: int, after_position: int, limit: int) -> Any:
            page = read_page(request_id, after_position, limit)
            pages.append(len(page))
            return page

        monkeypatch.setattr(store, "pending_page", counted_page)
        listings_before = sum(1 for name, _ in fake_mturk.requests if name == "ListWorkersWithQualificationType")
        app.click(APPROVER, "approve_request")
        request = app.wait_final()
    finally:
        app.stop()
    assert pages[:5] == [10, 10, 10, 10, 5] and max(pages) <= 10  # never more than a page read at once
    listings = sum(1 for name, _ in fake_mturk.requests if name == "ListWorkersWithQualificationType")
    assert listings - listings_before == 2  # the holders (Granted, then Revoked) once for all pages, not per page
    outcomes = {o.worker_id: o for o in store.outcomes(request.id)}
    assert outcomes[ids[37]].status is WorkerStatus.FAILED and outcomes[ids[37]].error_code == "ChangedSincePreview"
    assert fake_mturk.grant_counts() == {w: 1 for w in ids if w != ids[37]}


def test_pages_whose_workers_all_drifted_do_not_stall_the_grant(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor_module, "PAGE_SIZE", 5)
    ids = worker_ids(25)
    app = start_app(fake_slack, fake_mturk, database_url)
    try:
        app.request(f"{QUAL} {' '.join(ids)} value=5")
        app.approval_message()
        for worker_id in ids[:15]:  # the first three pages all change hands after the preview
            fake_mturk.preset_grant(QUAL, worker_id, 7)
        app.click(APPROVER, "approve_request")
        request = app.wait_final()
        outcomes = app.grant_qual.store.outcomes(request.id)
    finally:
        app.stop()
    assert request.state is RequestState.FAILED  # some were left as they are: Retry failed would grant them
    assert sum(o.error_code == "ChangedSincePreview" for o in outcomes) == 15
    assert fake_mturk.grant_counts() == {w: 1 for w in ids[15:]}
