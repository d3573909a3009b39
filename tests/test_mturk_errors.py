"""MTurk's answers reach the thread in MTurk's words, with a hint; transient faults are retried."""

from __future__ import annotations

from bot.requests import RequestState, WorkerStatus
from tests.conftest import APPROVER, QUAL, REQUESTER, WORKERS, RunningApp, start_app
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text


def approve(app: RunningApp, text: str) -> str:
    app.request(text)
    app.approval_message()
    app.click(APPROVER, "approve_request")
    app.wait_final()
    reply = app.summary()
    return message_text(reply)


def test_request_error_is_reported_per_worker_without_retry(app: RunningApp) -> None:
    app.request(f"{QUAL} {' '.join(WORKERS)}")
    app.approval_message()
    del app.mturk.owned_types[QUAL]  # disposed of on the requester site after the request was made
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.FAILED
    text = message_text(app.summary()).replace("&quot;", '"')
    assert "0 of 3" in text and "3 failed" in text
    assert "You requested a Qualification that does not exist." in text
    assert "Check the qualification type ID" in text
    calls = [c["WorkerId"] for c in app.mturk.calls("AssociateQualificationWithWorker")]
    assert sorted(calls) == sorted(WORKERS)  # RequestError is the caller's mistake: never retried
    outcomes = app.grant_qual.store.outcomes(1)
    assert {o.error_code for o in outcomes} == {"AWS.MechanicalTurk.QualificationDoesNotExist"}
    assert all(o.status is WorkerStatus.FAILED for o in outcomes)
    (dm,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert "granted 0, failed 3 in" in dm["text"]


def test_unknown_worker_gets_mturk_message_and_sandbox_hint(app: RunningApp) -> None:
    app.mturk.unknown_workers.add(WORKERS[2])
    text = approve(app, f"{QUAL} {' '.join(WORKERS)}").replace("&quot;", '"')
    assert '1 × The value "…" is not valid for the parameter WorkerId.' in text
    assert f"`{WORKERS[2]}`" in text
    assert "not known in the SANDBOX; was it a production ID?" in text
    outcome = app.grant_qual.store.outcomes(1)[2]
    assert outcome.error_code == "ParameterValidationError"
    results = app.slack.wait_for(lambda: results_file(app))
    assert f'{WORKERS[2]},,failed,ParameterValidationError,"The value ""{WORKERS[2]}"" is not valid' in results


def results_file(app: RunningApp) -> str | None:
    """The per-worker results CSV the app uploaded into the thread."""
    for upload in app.slack.uploaded_files.values():
        if upload.get("completed") and upload["filename"].endswith("-results.csv"):
            return bytes(upload["bytes"]).decode()
    return None


def test_service_fault_and_throttling_are_retried(app: RunningApp) -> None:
    app.mturk.fail_next("ServiceFault", times=2, worker_id=WORKERS[0])
    app.mturk.fail_next("ThrottlingException", times=2, worker_id=WORKERS[1])
    text = approve(app, f"{QUAL} {' '.join(WORKERS)}")
    assert "all 3 worker(s)" in text
    assert app.mturk.grant_counts() == {w: 1 for w in WORKERS}
    calls = [c["WorkerId"] for c in app.mturk.calls("AssociateQualificationWithWorker")]
    assert calls.count(WORKERS[0]) == 3 and calls.count(WORKERS[1]) == 3


def test_service_fault_as_http_400_is_retried_too(app: RunningApp) -> None:
    app.mturk.service_fault_status = 400  # botocore does not retry a 400 by itself
    app.mturk.fail_next("ServiceFault", times=2, worker_id=WORKERS[0])
    assert "all 1 worker(s)" in approve(app, f"{QUAL} {WORKERS[0]}")
    assert app.mturk.grant_counts() == {WORKERS[0]: 1}


def test_rejected_credentials_give_a_clear_message(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, monkeypatch
) -> None:
    app = start_app(fake_slack, fake_mturk, database_url)
    try:
        app.request(f"{QUAL} {' '.join(WORKERS)}")
        app.approval_message()
        monkeypatch.setattr(app.grant_qual.executor.gateway.client._request_signer._credentials, "secret_key", "wrong")
        app.click(APPROVER, "approve_request")
        app.wait_final()
        text = message_text(app.summary())
        assert "AWS rejected the credentials" in text and "Traceback" not in text
        assert fake_mturk.grants == []
        assert len(fake_mturk.calls("AssociateQualificationWithWorker")) <= 1
    finally:
        app.stop()


def test_missing_credentials_at_request_time(app: RunningApp, monkeypatch) -> None:
    monkeypatch.setattr(app.grant_qual.executor.gateway.client._request_signer, "_credentials", None)
    app.grant_qual.executor.gateway._owned_types_at = 0  # force a fresh lookup
    app.request(f"{QUAL} {WORKERS[0]}", response_key="nocreds")
    note = app.slack.wait_for(lambda: app.slack.responses_for("nocreds"))[0]["text"]
    assert "No AWS credentials were found" in note and "Nothing was posted" in note
