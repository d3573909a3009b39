"""`/grant-qual export [since …]`: every request of a period, one row per worker, as a CSV in the approver's DM.

Driven through signed commands to the real app; the CSV is read back from what the app uploaded to the fake
Slack. Requests are seeded straight into the store (a few hundred), plus one made, approved and granted
through Slack with a worker MTurk refuses.
"""

from __future__ import annotations

import csv
import io
import tempfile
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import update

from bot.export import EXPORT_COLUMNS, RequestExport, write_csv
from bot.policy import AccessPolicy
from bot.requests import (
    ExportLookup,
    GrantSpec,
    Operation,
    WorkerOutcome,
    WorkerStatus,
    WorkerTarget,
    is_lookup,
    parse_command_text,
)
from bot.slack.uploads import upload_file
from bot.store import GrantStore, create_database_engine, grant_requests
from tests.conftest import (
    APPROVER,
    BOT_TOKEN,
    OUTSIDER,
    QUAL,
    QUAL_NAME,
    REQUESTER,
    WORKERS,
    RunningApp,
    start_app,
)
from tests.fakes import FakeMTurk, FakeSlack

SEEDED = 300
OLD = 100  # the first OLD seeded requests were made in January
JANUARY = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def seed(store: GrantStore, count: int, *, workers: int = 2, old: int = 0) -> None:
    """`count` requests of `workers` workers each, every second one rejected by APPROVER; nothing left to post."""
    for i in range(count):
        targets = tuple(WorkerTarget(f"A1SEED{i:05d}X{j:03d}", 50 + j) for j in range(workers))
        request = store.create_request(
            GrantSpec(QUAL, targets), requester_id=REQUESTER, mturk_env="sandbox", qualification_name=QUAL_NAME
        )
        if i % 2:
            store.decide(request.id, user_id=APPROVER, approve=False)
        for event in store.events(request.id):
            store.event_delivered(event.id)
    if old:
        with store.engine.begin() as conn:
            conn.execute(update(grant_requests).where(grant_requests.c.id <= old).values(created_at=JANUARY))


@pytest.fixture
def seeded_app(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> Iterator[RunningApp]:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    seed(store, SEEDED, old=OLD)
    store.engine.dispose()
    running = start_app(fake_slack, fake_mturk, database_url)
    yield running
    running.stop()


def answer(app: RunningApp, key: str) -> str:
    return app.slack.wait_for(lambda: app.slack.responses_for(key))[0]["text"]


def exported_csv(app: RunningApp, user: str) -> list[dict[str, str]]:
    def upload() -> dict[str, Any] | None:
        with app.slack.lock:
            files = [f for f in app.slack.uploaded_files.values() if f["completed"] and f["channel"] == f"D{user}"]
        return files[-1] if files else None

    file = app.slack.wait_for(upload)
    assert file["filename"].startswith("grant-qual-requests-") and file["filename"].endswith(".csv")
    text = bytes(file["bytes"]).decode()
    assert text.splitlines()[0] == ",".join(EXPORT_COLUMNS)
    return list(csv.DictReader(io.StringIO(text)))


def test_an_approver_gets_every_request_since_a_date_by_dm(seeded_app: RunningApp) -> None:
    app = seeded_app
    app.mturk.unknown_workers.add(WORKERS[1])
    app.request(f"{QUAL} {WORKERS[0]} {WORKERS[1]} value=90")
    app.click(APPROVER, "approve_request", request_id=SEEDED + 1)
    app.wait_final(SEEDED + 1)

    app.request("export since 2026-06-01", user=APPROVER, response_key="since")
    assert answer(app, "since") == (
        f"Exporting {SEEDED - OLD + 1:,} requests since Jun 1, 2026 — the CSV is in your DM."
    )
    rows = exported_csv(app, APPROVER)
    assert len(rows) == (SEEDED - OLD) * 2 + 2
    assert {int(r["RequestId"]) for r in rows} == set(range(OLD + 1, SEEDED + 2))
    rejected = next(r for r in rows if r["RequestId"] == str(OLD + 2))
    assert rejected["State"] == "rejected" and rejected["DecidedBy"] == APPROVER and rejected["DecidedAt"]
    assert rejected["Outcome"] == "pending" and rejected["Environment"] == "sandbox"
    assert rejected["Operation"] == "grant" and rejected["QualificationTypeName"] == QUAL_NAME
    granted, failed = sorted((r for r in rows if r["RequestId"] == str(SEEDED + 1)), key=lambda r: r["WorkerId"])
    assert (granted["WorkerId"], granted["IntegerValue"], granted["Outcome"]) == (WORKERS[0], "90", "granted")
    assert granted["RequestedBy"] == REQUESTER and granted["DecidedBy"] == APPROVER and granted["State"] == "failed"
    assert granted["QualificationTypeId"] == QUAL and granted["CreatedAt"].endswith("+00:00")
    assert (failed["Outcome"], failed["ErrorCode"]) == ("failed", "ParameterValidationError")
    assert f'The value "{WORKERS[1]}" is not valid' in failed["ErrorMessage"]


def test_export_without_a_date_covers_every_request_and_since_days_the_last_ones(seeded_app: RunningApp) -> None:
    app = seeded_app
    app.request("export", user=APPROVER, response_key="all")
    assert answer(app, "all") == f"Exporting {SEEDED:,} requests so far — the CSV is in your DM."
    assert len(exported_csv(app, APPROVER)) == SEEDED * 2
    app.request("export since 30d", user=APPROVER, response_key="days")
    assert answer(app, "days").startswith(f"Exporting {SEEDED - OLD:,} requests since ")


def test_only_approvers_may_export(seeded_app: RunningApp) -> None:
    app = seeded_app
    app.request("export", user=REQUESTER, response_key="req")
    assert answer(app, "req") == (
        ":no_entry: Only approvers can export the record of requests; ask <@U0APPROVE> or <@U0APPROVE2>. "
        f"Your member ID is {REQUESTER}."
    )
    app.request("export", user=OUTSIDER, response_key="out")
    assert "Only requesters and approvers can look things up" in answer(app, "out")
    with app.slack.lock:
        assert not any(f["channel"] for f in app.slack.uploaded_files.values())


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("export since 2026-02-30", "`2026-02-30` is not a date like 2026-11-01"),
        ("export since yesterday", "`yesterday` is not a date"),
        ("export 2026-11-01", "Export takes nothing, or a start"),
        ("export since 0d", "Give 1 to 36500 days"),
    ],
)
def test_a_bad_period_is_explained_and_nothing_is_sent(seeded_app: RunningApp, text: str, fragment: str) -> None:
    seeded_app.request(text, user=APPROVER, response_key="bad")
    reply = answer(seeded_app, "bad")
    assert reply.startswith(":x: ") and fragment in reply
    assert seeded_app.slack.calls_to("files.getUploadURLExternal") == []


def test_an_empty_period_says_so(seeded_app: RunningApp) -> None:
    seeded_app.request("export since 2099-01-01", user=APPROVER, response_key="none")
    assert answer(seeded_app, "none") == "No requests were made since Jan 1, 2099; there is nothing to export."


# ---------------------------------------------------------------------------------------- streaming


class CountingStore:
    """The store's export queries, counted: which pages the export asked for, and when."""

    def __init__(self, store: GrantStore) -> None:
        self.store = store
        self.pages = 0

    def count_requests_made(self, since: datetime | None, until: datetime) -> int:
        return self.store.count_requests_made(since, until)

    def export_page(self, *args: Any) -> Any:
        self.pages += 1
        return self.store.export_page(*args)


def test_rows_come_page_by_page_as_they_are_read(database_url: str) -> None:
    check_rows_come_page_by_page(database_url)


def test_rows_come_page_by_page_on_postgresql(postgres_url: str) -> None:
    check_rows_come_page_by_page(postgres_url)


def check_rows_come_page_by_page(database_url: str) -> None:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    seed(store, 7, workers=3)
    counting = CountingStore(store)
    export = RequestExport(counting, AccessPolicy(frozenset(), frozenset({APPROVER})), page_rows=5)  # type: ignore[arg-type]
    plan = export.plan(APPROVER, ExportLookup())
    rows = export.rows(plan)
    assert next(rows) == EXPORT_COLUMNS and counting.pages == 0
    first_page = [next(rows) for _ in range(5)]
    assert counting.pages == 1 and [r[0] for r in first_page] == ["1", "1", "1", "2", "2"]
    rest = list(rows)
    assert len(rest) == 7 * 3 - 5 and counting.pages == 5  # 21 rows: pages of 5, 5, 5, 5 and 1
    assert len({(r[0], r[9]) for r in first_page + rest}) == 21  # no row twice across the page boundaries
    store.engine.dispose()


def test_a_revoke_is_exported_as_one(database_url: str) -> None:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    targets = (WorkerTarget("A1KEEPS", 80), WorkerTarget("A1LOSES", None, Operation.REVOKE))
    request = store.create_request(
        GrantSpec(QUAL, targets), requester_id=REQUESTER, mturk_env="sandbox", qualification_name=QUAL_NAME
    )
    done = [WorkerOutcome(t.worker_id, t.integer_value, WorkerStatus.GRANTED, operation=t.operation) for t in targets]
    store.record_outcomes(request.id, done)
    export = RequestExport(store, AccessPolicy(frozenset(), frozenset({APPROVER})))
    header, *rows = export.rows(export.plan(APPROVER, ExportLookup()))
    by_worker = {row[header.index("WorkerId")]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_worker["A1KEEPS"]["Operation"] == "grant" and by_worker["A1KEEPS"]["Outcome"] == "granted"
    assert by_worker["A1LOSES"]["Operation"] == "revoke" and by_worker["A1LOSES"]["Outcome"] == "revoked"
    store.engine.dispose()


class ReadSpy(io.BufferedRandom):
    """A temporary file that records the largest read the uploader made from it."""

    largest_read = 0

    def read(self, size: int | None = -1) -> bytes:
        block = super().read(size)
        self.largest_read = max(self.largest_read, len(block))
        return block


def test_a_large_export_goes_to_disk_row_by_row_and_to_slack_block_by_block(
    fake_slack: FakeSlack, database_url: str
) -> None:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    seed(store, 20, workers=1000)  # 20,000 rows, about 2.5 MB of CSV
    export = RequestExport(store, AccessPolicy(frozenset(), frozenset({APPROVER})), page_rows=200)
    plan = export.plan(APPROVER, ExportLookup())
    with tempfile.TemporaryFile() as warm_up:  # SQLAlchemy compiles and caches its statements once
        write_csv(export.rows(plan), warm_up)
    with tempfile.TemporaryFile(buffering=0) as raw, ReadSpy(raw) as file:
        # Memory is traced while the CSV is written only: the fake Slack, in this process, holds what it receives.
        # A page of 200 rows peaks near 0.6 MB; holding the whole export (20,000 rows) took 14 MB.
        tracemalloc.start()
        try:
            assert write_csv(export.rows(plan), file) == 20_000
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        size = file.tell()
        assert size > 2_000_000 and peak < 2_000_000, f"peak {peak:,} bytes: the export was held in memory"
        client = WebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
        upload_file(client, channel=f"D{APPROVER}", filename="export.csv", file=file, initial_comment="all")
        assert 0 < file.largest_read <= 64 * 1024  # http.client sent it in blocks
    (upload,) = fake_slack.uploaded_files.values()
    assert upload["completed"] and upload["length"] == len(upload["bytes"]) == size
    assert len(bytes(upload["bytes"]).splitlines()) == 20_001
    store.engine.dispose()


def test_write_csv_counts_rows_and_leaves_the_file_open() -> None:
    with tempfile.TemporaryFile() as file:
        assert write_csv(iter([("a", "b"), ("1", 'say "hi"')]), file) == 1
        file.seek(0)
        assert file.read() == b'a,b\r\n1,"say ""hi"""\r\n'


def test_a_refused_upload_is_told_to_the_approver(seeded_app: RunningApp) -> None:
    seeded_app.slack.error_next("files.completeUploadExternal", "invalid_channel")
    seeded_app.request("export", user=APPROVER, response_key="refused")
    assert answer(seeded_app, "refused") == (
        f":warning: The export of {SEEDED:,} requests so far could not be sent to your DM. Try again."
    )


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("export", ExportLookup()),
        ("Export since 2026-11-01", ExportLookup(since_date=date(2026, 11, 1))),
        ("export SINCE 7D", ExportLookup(last_days=7)),
    ],
)
def test_export_parsing(text: str, wanted: ExportLookup) -> None:
    assert parse_command_text(text, max_workers=10) == wanted


def test_export_in_capitals_is_a_qualification_type_id() -> None:
    assert not is_lookup("EXPORT A1B2C3D4E5F6G7")
