"""The preview, end to end: the change shown before approval, what is approved is what runs, drift, the read
chosen by cost, and a crash during a preview."""

from __future__ import annotations

import time
from pathlib import Path

from bot.requests import EventKind, RequestState, WorkerStatus
from bot.store import GrantStore, create_database_engine
from tests.app_process import AppProcess
from tests.conftest import APPROVER, CHANNEL, QUAL, QUAL_NAME, REQUESTER, RunningApp, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackSender, message_text, modal_values

CHANGED, UNCHANGED, REVOKED, UNKNOWN, NEW = (f"A{kind}0000000001" for kind in ("CHG", "UNC", "REV", "UNK", "NEW"))


def uploaded(app: RunningApp, suffix: str) -> list[str]:
    return [
        bytes(u["bytes"]).decode()
        for u in app.slack.uploaded_files.values()
        if u.get("completed") and u["filename"].endswith(suffix)
    ]


def ids(n: int, prefix: str = "AW") -> list[str]:
    return [f"{prefix}{i:010d}" for i in range(n)]


def one_of_each(mturk: FakeMTurk) -> list[str]:
    mturk.preset_grant(QUAL, CHANGED, 50)
    mturk.preset_grant(QUAL, UNCHANGED, 80)
    mturk.preset_grant(QUAL, REVOKED, 80)
    mturk.revoke(QUAL, REVOKED)
    mturk.unknown_workers.add(UNKNOWN)
    return [CHANGED, UNCHANGED, REVOKED, UNKNOWN, NEW]


def test_the_message_shows_the_change_and_unchanged_workers_are_not_called(app: RunningApp) -> None:
    workers = one_of_each(app.mturk)
    app.request(f"{QUAL} {' '.join(workers)} value=80")
    text = message_text(app.approval_message())
    assert "*Change*: 1 new (no score yet) (e.g. `ANEW0000000001`)" in text
    assert "1 changed (e.g. `ACHG0000000001` 50 → 80)" in text
    assert "1 unchanged (not called) (e.g. `AUNC0000000001` already holds 80)" in text
    assert "1 revoked earlier (e.g. `AREV0000000001` revoked (80) → 80)" in text
    assert "1 unknown in SANDBOX (e.g. `AUNK0000000001`)" in text
    assert "will not be called (no call, no second email)" in text and "regrant=yes" in text
    # A small request reads each worker: five calls, no listing.
    assert len(app.mturk.calls("GetQualificationScore")) == 5
    assert app.mturk.calls("ListWorkersWithQualificationType") == []

    (preview,) = app.slack.wait_for(lambda: uploaded(app, "request-1-preview.csv"))
    assert preview.splitlines() == [
        "WorkerId,Current,New,Change",
        f"{CHANGED},50,80,changed",
        f"{UNCHANGED},80,80,unchanged (not called)",
        f"{REVOKED},revoked (80),80,revoked_earlier",
        f"{UNKNOWN},unknown worker,80,unknown in SANDBOX",
        f"{NEW},no score,80,new",
    ]

    app.click(APPROVER, "approve_request")
    request = app.wait_final()
    assert request.state is RequestState.FAILED  # the unknown worker: MTurk refuses them
    called = [c["WorkerId"] for c in app.mturk.calls("AssociateQualificationWithWorker")]
    assert sorted(called) == sorted([CHANGED, REVOKED, UNKNOWN, NEW])  # never the one who held 80
    assert app.mturk.current_value(QUAL, REVOKED) == 80
    statuses = {o.worker_id: o.status for o in app.grant_qual.store.outcomes(1)}
    assert statuses[UNCHANGED] is WorkerStatus.SKIPPED
    assert "1 already held 80 and were not called" in message_text(app.summary())
    app.request("status 1", response_key="status")
    (answer,) = app.slack.wait_for(lambda: app.slack.responses_for("status"))
    assert "3 granted · 1 failed · 0 pending · 1 not called (already held the score)" in message_text(answer)


def test_regrant_yes_grants_workers_who_already_hold_the_score(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, UNCHANGED, 80)
    app.request(f"{QUAL} {UNCHANGED} {NEW} value=80 regrant=yes")
    text = message_text(app.approval_message())
    assert "1 unchanged (granted again)" in text and "Re-grant was asked" in text
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    called = [c["WorkerId"] for c in app.mturk.calls("AssociateQualificationWithWorker")]
    assert sorted(called) == [NEW, UNCHANGED]
    assert "not called" not in message_text(app.summary())


def test_the_modal_checkbox_asks_for_regrant(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, UNCHANGED, 80)
    values = modal_values(QUAL, workers=UNCHANGED, value="80")
    values["regrant"] = {
        "value": {"type": "checkboxes", "selected_options": [{"text": {"type": "plain_text"}, "value": "regrant"}]}
    }
    assert app.sender.submit_view(REQUESTER, values).body == ""
    assert "1 unchanged (granted again)" in message_text(app.approval_message())
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert [c["WorkerId"] for c in app.mturk.calls("AssociateQualificationWithWorker")] == [UNCHANGED]


def test_a_big_request_against_few_holders_lists_the_holders(app: RunningApp) -> None:
    workers = ids(300)
    app.mturk.preset_grant(QUAL, workers[7], 5)
    app.request(f"{QUAL} {' '.join(workers)} value=5")
    text = message_text(app.approval_message())
    assert "299 new" in text and "1 unchanged (not called)" in text
    # One page of Granted holders, one of Revoked: two calls for 300 workers.
    assert len(app.mturk.calls("ListWorkersWithQualificationType")) == 2
    assert app.mturk.calls("GetQualificationScore") == []


def test_a_big_request_against_many_holders_reads_each_worker_after_as_many_pages(app: RunningApp) -> None:
    for holder in ids(3000, "AH"):
        app.mturk.preset_grant(QUAL, holder, 1)
    workers = ids(25)
    app.mturk.preset_grant(QUAL, workers[3], 7)
    app.request(f"{QUAL} {' '.join(workers)} value=9")
    text = message_text(app.approval_message())
    assert "24 new" in text and "1 changed (e.g. `AW0000000003` 7 → 9)" in text
    # The listing (30 pages) would cost more than 25 reads: abandoned after 25 pages, then one read per worker.
    assert len(app.mturk.calls("ListWorkersWithQualificationType")) == 25
    assert len(app.mturk.calls("GetQualificationScore")) == 25


def test_a_change_made_after_the_preview_is_reported_not_overwritten_and_retry_grants_it(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, CHANGED, 50)
    app.request(f"{QUAL} {CHANGED} {NEW} value=80")
    assert "1 changed (e.g. `ACHG0000000001` 50 → 80)" in message_text(app.approval_message())
    app.mturk.preset_grant(QUAL, CHANGED, 60)  # someone grants 60 on the requester site meanwhile
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.FAILED
    summary = app.summary()
    text = message_text(summary)
    assert "was 50 at the preview, is 60 now; left as it is" in text and f"`{CHANGED}`" in text
    assert app.mturk.current_value(QUAL, CHANGED) == 60  # left as it is
    assert [c["WorkerId"] for c in app.mturk.calls("AssociateQualificationWithWorker")] == [NEW]

    button = next(e for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"])
    app.sender.click(APPROVER, "retry_failed", button["value"], message_ts=summary["ts"], channel_id=CHANNEL)
    app.slack.wait_for(lambda: len(app.posts("finished")) == 2, timeout=20)
    assert app.grant_qual.store.get(1).state is RequestState.DONE  # type: ignore[union-attr]
    assert app.mturk.current_value(QUAL, CHANGED) == 80


def test_a_worker_file_whose_current_column_is_stale_is_flagged(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, CHANGED, 60)
    app.mturk.preset_grant(QUAL, UNCHANGED, 80)
    rows = [f'"Worker ID","CURRENT-{QUAL_NAME}","UPDATE-{QUAL_NAME}"']
    rows += [f'"{CHANGED}","50","80"', f'"{UNCHANGED}","80","80"', f'"{NEW}","","80"']
    file = app.slack.host_file("F0STALE", "User_1_workers.csv", ("\n".join(rows) + "\n").encode())
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).body == ""
    text = message_text(app.approval_message())
    assert "CURRENT- score differs from MTurk for 1 worker(s)" in text and f"`{CHANGED}` file 50, MTurk 60" in text
    (preview,) = app.slack.wait_for(lambda: uploaded(app, "request-1-preview.csv"))
    assert preview.splitlines() == [
        "WorkerId,Current,New,Change,FileCurrent,FileDiffers",
        f"{CHANGED},60,80,changed,50,yes",
        f"{UNCHANGED},80,80,unchanged (not called),80,",
        f"{NEW},no score,80,new,,",
    ]


def test_a_crash_during_the_preview_leaves_the_request_to_be_previewed_and_posted_once(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path
) -> None:
    fake_mturk.latency = 3.0  # each page of holders takes 3 s: the preview is still reading when it is killed
    workers = ids(400)
    env = app_environment(fake_slack, fake_mturk, database_url, MTURK_MAX_CONCURRENCY="2", GRANT_LEASE_SECONDS="2")
    store = GrantStore(create_database_engine(database_url))
    first = AppProcess(env, tmp_path, name="app0").start()
    second: AppProcess | None = None
    try:
        store.upgrade_schema()
        sender = SlackSender(first.events_url, "test-signing-secret-0123456789", fake_slack.response_url(""))
        assert sender.command(REQUESTER, f"{QUAL} {' '.join(workers)}").status == 200
        fake_slack.wait_for(lambda: (r := store.get(1)) and r.state is RequestState.PREVIEWING and r, timeout=10)
        first.kill()
        assert store.get(1).state is RequestState.PREVIEWING  # type: ignore[union-attr]
        fake_mturk.latency = 0.0
        second = AppProcess(env, tmp_path, name="app1").start()
        request = fake_slack.wait_for(lambda: (r := store.get(1)) and r.message_ts and r, timeout=30)
        assert request.state is RequestState.PENDING
        time.sleep(1.5)  # a second post would show up here
        posted = [m for m in fake_slack.messages if m["channel"] == CHANNEL and not m.get("thread_ts")]
        assert len(posted) == 1
        assert [e.kind for e in store.events(1)] == [EventKind.SUBMITTED]
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_long_preview_shows_its_progress_in_a_dm_updated_in_place(app: RunningApp) -> None:
    app.mturk.latency = 2.0  # two pages of holders: the preview takes about 4 s
    app.request(f"{QUAL} {' '.join(ids(25))}")
    app.approval_message(timeout=20)
    (dm,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    updates = [c for c in app.slack.calls_to("chat.update") if c.args.get("ts") == dm["ts"]]
    assert updates and "Read the current scores of the 25 worker(s) of request #1" in dm["text"]
    first = app.slack.calls_to("chat.postMessage")
    shown = next(c.args["text"] for c in first if c.args.get("channel") == REQUESTER)
    assert "Reading the current scores of the 25 worker(s) of request #1 before it is posted" in shown


def test_a_quick_preview_sends_no_dm(app: RunningApp) -> None:
    app.request(f"{QUAL} {NEW}")
    app.approval_message()
    time.sleep(0.5)
    assert app.slack.dms_to(REQUESTER) == []
