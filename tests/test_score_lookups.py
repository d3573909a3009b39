"""`/grant-qual score` and `holders`: a worker's score and a type's holders, straight from MTurk, for
requesters and approvers, the holders' full list as a CSV in the asker's DM."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import APPROVER_2, OUTSIDER, QUAL, QUAL_NAME, REQUESTER, WORKERS, RunningApp
from tests.fakes import FakeMTurk

GRANTED_AT = time.time() - 86_400


def answer(app: RunningApp, key: str) -> str:
    (note,) = app.slack.wait_for(lambda: app.slack.responses_for(key))
    assert note["response_type"] == "ephemeral"
    return str(note["text"])


def uploaded_to(app: RunningApp, user: str) -> list[dict]:
    with app.slack.lock:
        return [dict(f) for f in app.slack.uploaded_files.values() if f["completed"] and f["channel"] == f"D{user}"]


# ------------------------------------------------------------------------------------------ score


def test_score_of_a_worker_who_holds_it(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, WORKERS[0], 80, granted_at=GRANTED_AT)
    app.request(f'score "{QUAL_NAME}" {WORKERS[0]}', response_key="s")
    text = answer(app, "s")
    assert text.startswith("[SANDBOX]")
    date = f"<!date^{int(GRANTED_AT)}^on {{date_short}} at {{time}}|"
    assert f"`{WORKERS[0]}` holds “{QUAL_NAME}” (`{QUAL}`) with score 80, granted {date}" in text
    assert app.mturk.calls("GetQualificationScore") == [{"QualificationTypeId": QUAL, "WorkerId": WORKERS[0]}]
    assert app.mturk.calls("AssociateQualificationWithWorker") == []


def test_score_by_id_and_by_an_approver(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, WORKERS[0], 5)
    app.mturk.revoke(QUAL, WORKERS[0])
    app.request(f"score {QUAL} {WORKERS[0]}", user=APPROVER_2, response_key="r")
    assert "with score 5 but its status is Revoked" in answer(app, "r")


def test_a_worker_without_the_qualification_does_not_hold_it(app: RunningApp) -> None:
    app.request(f'score "{QUAL_NAME}" {WORKERS[1]}', response_key="none")
    assert f"[SANDBOX] `{WORKERS[1]}` does not hold “{QUAL_NAME}” (`{QUAL}`) in the SANDBOX." in answer(app, "none")
    assert len(app.mturk.calls("GetQualificationScore")) == 1  # MTurk's RequestError is an answer, not retried


def test_a_worker_id_mturk_does_not_know(app: RunningApp) -> None:
    app.mturk.unknown_workers.add(WORKERS[2])
    app.request(f'score "{QUAL_NAME}" {WORKERS[2]}', response_key="unknown")
    assert f"MTurk does not know the worker ID `{WORKERS[2]}` in the SANDBOX" in answer(app, "unknown")


def test_a_malformed_worker_id_is_refused_before_mturk_is_asked(app: RunningApp) -> None:
    app.request(f'score "{QUAL_NAME}" a1lower', response_key="bad")
    text = answer(app, "bad")
    assert "Not MTurk worker IDs: `a1lower`" in text and "/grant-qual score" in text
    assert app.mturk.calls("GetQualificationScore") == []


def test_an_unknown_type_name_is_answered_with_close_names(app: RunningApp) -> None:
    app.request(f'score "Passed" {WORKERS[0]}', response_key="close")
    text = answer(app, "close")
    assert "No qualification type named “Passed”" in text and f"Did you mean “{QUAL_NAME}” (`{QUAL}`)?" in text
    app.request("holders 3NOTOURS000000000001", response_key="id")
    assert "No qualification type named “3NOTOURS000000000001” (nor with that ID)" in answer(app, "id")
    assert app.mturk.calls("GetQualificationScore") == []


@pytest.mark.parametrize("text", [f"score {QUAL} {WORKERS[0]}", f"holders {QUAL}"])
def test_someone_not_on_the_allowlists_may_not_look_up(app: RunningApp, text: str) -> None:
    app.mturk.preset_grant(QUAL, WORKERS[0], 80)
    app.request(text, user=OUTSIDER, response_key="out")
    assert "Only requesters and approvers can look things up; to become one, ask <@U0APPROVE>" in answer(app, "out")
    assert app.mturk.requests == []
    assert uploaded_to(app, OUTSIDER) == []


def test_mturk_refusing_the_credentials_is_explained(app: RunningApp, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = app.grant_qual.service.gateway.client._request_signer._credentials
    monkeypatch.setattr(credentials, "access_key", "AKIAWRONG")
    app.request(f"score {QUAL} {WORKERS[0]}", response_key="creds")
    text = answer(app, "creds")
    assert "MTurk could not answer: AWS rejected the credentials" in text and "Try again" in text


# ------------------------------------------------------------------------------------------ holders


def test_holders_counts_them_and_sends_every_one_as_csv_by_dm(app: RunningApp) -> None:
    holders = [f"A{i:013d}" for i in range(1, 251)]
    for i, worker in enumerate(holders):
        app.mturk.preset_grant(QUAL, worker, i % 7, granted_at=GRANTED_AT + i)
    app.mturk.revoke(QUAL, holders[0])
    app.request(f'holders "{QUAL_NAME}"', response_key="h")
    text = answer(app, "h")
    assert text == (
        f"[SANDBOX] 249 worker(s) hold “{QUAL_NAME}” (`{QUAL}`) in the SANDBOX (1 more had it revoked); "
        "the list is in your DM."
    )
    (upload,) = uploaded_to(app, REQUESTER)
    assert upload["filename"] == f"grant-qual-holders-{QUAL}-sandbox.csv"
    assert "[SANDBOX]" in upload["initial_comment"] and QUAL_NAME in upload["initial_comment"]
    rows = list(csv.DictReader(io.StringIO(upload["bytes"].decode())))
    assert [r["WorkerId"] for r in rows] == [*holders[1:], holders[0]]
    assert {r["Status"] for r in rows[:-1]} == {"Granted"} and rows[-1]["Status"] == "Revoked"
    granted = datetime.fromtimestamp(GRANTED_AT + 2, UTC).isoformat(timespec="seconds")
    assert rows[1] == {"WorkerId": holders[2], "IntegerValue": "2", "Status": "Granted", "GrantTime": granted}
    pages = app.mturk.calls("ListWorkersWithQualificationType")
    assert [(p["Status"], p["MaxResults"], "NextToken" in p) for p in pages] == [
        ("Granted", 100, False),
        ("Granted", 100, True),
        ("Granted", 100, True),
        ("Revoked", 100, False),
    ]


def test_over_ten_thousand_holders_are_read_page_by_page_and_answered_in_one_line(app: RunningApp) -> None:
    for i in range(10_001):
        app.mturk.preset_grant(QUAL, f"A{i:013d}", 1, granted_at=GRANTED_AT + i)
    app.request(f"holders {QUAL}", response_key="many")
    text = answer(app, "many")
    assert text.startswith("[SANDBOX] 10,001 worker(s) hold") and len(text) < 200
    (upload,) = uploaded_to(app, REQUESTER)
    assert upload["bytes"].count(b"\n") == 10_002  # the header and every holder
    assert len(app.mturk.calls("ListWorkersWithQualificationType")) == 101 + 1  # Granted's pages, then Revoked's


def test_holders_for_an_approver_and_when_nobody_holds_it(app: RunningApp) -> None:
    app.request(f"holders {QUAL}", user=APPROVER_2, response_key="empty")
    assert answer(app, "empty") == f"[SANDBOX] No worker holds “{QUAL_NAME}” (`{QUAL}`) in the SANDBOX."
    assert uploaded_to(app, APPROVER_2) == []


def test_holders_when_slack_refuses_the_file(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, WORKERS[0], 1)
    app.slack.error_next("files.getUploadURLExternal", "ratelimited")
    app.request(f"holders {QUAL}", response_key="refused")
    assert "1 worker(s) hold" in answer(app, "refused") and "could not be sent to your DM" in answer(app, "refused")


def test_help_lists_the_lookups(app: RunningApp) -> None:
    app.request("help", response_key="help")
    text = answer(app, "help")
    assert '`/grant-qual score "Passed screener" A1B2C3D4E5F6G7`' in text
    assert '`/grant-qual holders "Passed screener"`' in text and "by its name in quotes" in text


# ------------------------------------------------------------------------------------------ the fake, as MTurk


def test_the_fake_answers_these_reads_as_mturk_does(fake_mturk: FakeMTurk) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = boto3.client(
        "mturk",
        region_name="us-east-1",
        endpoint_url=fake_mturk.url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    fake_mturk.add_type("3KEYWORDS00000000001", "Plain", keywords="screening, pilot")
    found = client.list_qualification_types(MustBeRequestable=False, MustBeOwnedByCaller=True, Query="pilot")
    assert [t["QualificationTypeId"] for t in found["QualificationTypes"]] == ["3KEYWORDS00000000001"]
    with pytest.raises(ClientError) as missing:
        client.get_qualification_score(QualificationTypeId=QUAL, WorkerId=WORKERS[0])
    assert missing.value.response["Error"]["Code"] == "RequestError"
    for i in range(3):
        fake_mturk.preset_grant(QUAL, f"A{i:05d}", i)
    first = client.list_workers_with_qualification_type(QualificationTypeId=QUAL, Status="Granted", MaxResults=2)
    rest = client.list_workers_with_qualification_type(
        QualificationTypeId=QUAL, Status="Granted", MaxResults=2, NextToken=first["NextToken"]
    )
    assert [q["WorkerId"] for q in first["Qualifications"] + rest["Qualifications"]] == ["A00000", "A00001", "A00002"]
    assert "NextToken" not in rest and first["NumResults"] == 2
    with pytest.raises(ClientError) as foreign:
        fake_mturk.add_type("3THEIRS0000000000001", "Theirs", owned=False)
        client.list_workers_with_qualification_type(QualificationTypeId="3THEIRS0000000000001", MaxResults=10)
    assert foreign.value.response["Error"]["Code"] == "RequestError"
