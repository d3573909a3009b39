"""Bulk grants: concurrency under throttling, progress in place, partial failure, Retry failed."""

from __future__ import annotations

import threading
import time

from bot.requests import RequestState, WorkerStatus
from tests.conftest import APPROVER, APPROVER_2, CHANNEL, OUTSIDER, QUAL, REQUESTER, RunningApp, posted_for
from tests.slack_sender import message_text


def workers(n: int, prefix: str = "A") -> list[str]:
    return [f"{prefix}{i:013d}" for i in range(n)]


def request_and_approve(app: RunningApp, ids: list[str], extra: str = "") -> None:
    app.request(f"{QUAL} {' '.join(ids)} {extra}")
    app.approval_message()
    app.click(APPROVER, "approve_request")


def uploaded(app: RunningApp, suffix: str) -> list[str]:
    return [
        bytes(u["bytes"]).decode()
        for u in app.slack.uploaded_files.values()
        if u.get("completed") and u["filename"].endswith(suffix)
    ]


def test_throttling_and_service_faults_mid_run_grant_everyone_exactly_once(app: RunningApp) -> None:
    ids = workers(1000)
    app.mturk.latency = 0.01
    app.mturk.throttle_above_tps = 150
    for worker in ids[300:310]:
        app.mturk.fail_next("ServiceFault", times=2, worker_id=worker)
    request_and_approve(app, ids)
    request = app.wait_final(timeout=60)
    assert request.state is RequestState.DONE
    assert app.mturk.grant_counts() == {w: 1 for w in ids}
    assert app.mturk.injected_faults["ThrottlingException"] > 0  # the limiter had to find the rate
    assert app.mturk.injected_faults["ServiceFault"] == 20

    progress = app.posts("approved")
    assert len(progress) == 1  # one progress message, updated in place
    updates = [c for c in app.slack.calls_to("chat.update") if c.args.get("ts") == progress[0]["ts"]]
    assert len(updates) >= 2
    assert "1000 granted · 0 failed" in progress[0]["text"]
    assert "granted 1000 of 1000" in message_text(app.approval_message())


def test_big_request_shows_count_first_ids_and_full_list_file(app: RunningApp) -> None:
    ids = workers(300)
    app.request(f"{QUAL} {' '.join(ids)} value=2")
    text = message_text(app.approval_message())
    assert "Workers (300)" in text and ids[0] in text and "and 260 more" in text and ids[-1] not in text
    # The preview CSV lists everyone (it replaced the plain list of workers and scores).
    (listing,) = app.slack.wait_for(lambda: uploaded(app, "-preview.csv"))
    assert listing.splitlines() == ["WorkerId,Current,New,Change", *(f"{w},no score,2,new" for w in ids)]


def test_partial_failure_summary_file_and_retry_failed_reruns_only_those(app: RunningApp) -> None:
    ids = workers(60)
    unknown = ids[10:15]
    app.mturk.unknown_workers.update(unknown)
    request_and_approve(app, ids, "value=9")
    assert app.wait_final().state is RequestState.FAILED
    summary = app.summary()
    text = message_text(summary).replace("&quot;", '"')
    assert "55 of 60 worker(s); 5 failed" in text
    assert '5 × The value "…" is not valid for the parameter WorkerId.' in text
    assert all(f"`{w}`" in text for w in unknown)
    (results,) = app.slack.wait_for(lambda: uploaded(app, "-round-1-results.csv"))
    rows = results.splitlines()
    assert len(rows) == 61 and sum(",failed," in r for r in rows) == 5
    assert "failed 5" in app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))[0]["text"]

    button = next(e for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == "retry_failed" and "(5)" in button["text"]["text"]
    retry = {"message_ts": summary["ts"], "channel_id": CHANNEL}
    app.sender.click(OUTSIDER, "retry_failed", button["value"], response_key="no", **retry)
    assert "Only approvers" in app.slack.wait_for(lambda: app.slack.responses_for("no"))[0]["text"]
    app.sender.click(REQUESTER, "retry_failed", button["value"], response_key="self", **retry)
    assert "Only approvers" in app.slack.wait_for(lambda: app.slack.responses_for("self"))[0]["text"]
    assert app.grant_qual.store.get(1).round == 1  # type: ignore[union-attr]

    app.mturk.unknown_workers.clear()  # the workers have now signed in to the sandbox
    calls_before = len(app.mturk.calls("AssociateQualificationWithWorker"))
    clicks = [
        threading.Thread(target=app.sender.click, args=(who, "retry_failed", button["value"]), kwargs=retry)
        for who in (APPROVER, APPROVER, APPROVER_2)
    ]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    app.slack.wait_for(lambda: len(app.posts("finished")) == 2, timeout=20)
    request = app.grant_qual.store.get(1)
    assert request is not None and request.state is RequestState.DONE and request.round == 2
    retried = [c["WorkerId"] for c in app.mturk.calls("AssociateQualificationWithWorker")[calls_before:]]
    assert sorted(retried) == sorted(unknown)  # only the failed workers, once each
    assert all(o.status is WorkerStatus.GRANTED for o in app.grant_qual.store.outcomes(1))
    second = app.posts("finished")[1]
    assert "all 60 worker(s)" in message_text(second) and "round 2" in message_text(second)
    old = app.slack.wait_for(
        lambda: (m := app.slack.message(CHANNEL, summary["ts"])) and "Retried by" in message_text(m) and m
    )
    assert not [b for b in old["blocks"] if b["type"] == "actions"]
    assert len([m for m in app.thread() if posted_for(m) == "retry_approved"]) == 1
    time.sleep(0.5)
    assert len(app.posts("finished")) == 2
