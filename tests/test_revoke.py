"""Revoking, end to end: by command, by the form and by a requester-site worker file (mixed with scores); the
REVOKE label wherever a person decides or reads the outcome; no call for workers who do not hold it; the message
to workers sent as MTurk's Reason only when given; and the gateway's revoke with its read-back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.config import MTurkEnvironment, load_settings
from bot.mturk import GRANT_ATTEMPTS, NOT_HELD, MTurkGateway, create_mturk_client
from bot.outcome_digest import OutcomeDigest
from bot.preview import Held, HeldStatus
from bot.requests import OUTCOME_UNKNOWN, Operation, RequestState, WorkerOutcome, WorkerStatus, WorkerTarget
from bot.slack import blocks
from tests.conftest import APPROVER, QUAL, QUAL_NAME, REQUESTER, RunningApp, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import message_text, modal_values

HOLDER, HOLDER_2, NEVER, REVOKED = "AHOLD00000001", "AHOLD00000002", "ANEVER0000001", "AREVOK0000001"


def approve_button(message: dict[str, Any]) -> dict[str, Any]:
    return next(
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "approve_request"
    )


def uploaded(app: RunningApp, suffix: str) -> list[str]:
    return [
        bytes(u["bytes"]).decode()
        for u in app.slack.uploaded_files.values()
        if u.get("completed") and u["filename"].endswith(suffix)
    ]


def test_revoke_by_command_says_revoke_and_calls_only_the_holders(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, HOLDER, 80)
    app.mturk.preset_grant(QUAL, REVOKED, 50)
    app.mturk.revoke(QUAL, REVOKED)
    app.request(f'revoke "{QUAL_NAME}" {HOLDER} {NEVER} {REVOKED} reason=study over message=Thanks for taking part')
    message = app.approval_message()
    text = message_text(message)
    assert "Qualification REVOKE request #1" in text
    assert ":no_entry_sign: *REVOKE* — removes the qualification from 3 worker(s)" in text
    assert "*Message to workers (sent by MTurk)*\n“Thanks for taking part”" in text
    assert "Reason: study over" in text
    assert f"1 revoke (e.g. `{HOLDER}` revoke (had 80))" in text
    assert "2 do not hold it (not called)" in text
    assert "Granting overwrites" not in text
    confirm = approve_button(message)["confirm"]
    assert confirm["title"]["text"] == "REVOKE now?"
    assert confirm["text"]["text"].startswith(f"*REVOKE* `{QUAL}` {QUAL_NAME} from 3 worker(s) in *SANDBOX*?")
    assert message["text"].startswith("[SANDBOX] Request #1: REVOKE")
    (preview,) = app.slack.wait_for(lambda: uploaded(app, "request-1-preview.csv"))
    assert f"{HOLDER},80,revoke,revoke" in preview.splitlines()
    assert f"{NEVER},no score,revoke,does not hold it (not called)" in preview.splitlines()

    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    calls = app.mturk.calls("DisassociateQualificationFromWorker")
    assert calls == [{"QualificationTypeId": QUAL, "WorkerId": HOLDER, "Reason": "Thanks for taking part"}]
    assert app.mturk.holds(QUAL, HOLDER) is None and app.mturk.revoke_counts() == {HOLDER: 1}
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
    summary = message_text(app.summary())
    assert f"Revoked `{QUAL}` {QUAL_NAME} from all 1 worker(s)" in summary
    assert "2 did not hold it and were not called." in summary
    assert "Workers were" not in summary  # the grant's notification line means nothing here
    assert "revoked from 1 of 3 worker(s)" in message_text(app.approval_message())
    (dm,) = app.slack.wait_for(lambda: app.slack.dms_to(REQUESTER))
    assert "revoked 1, failed 0" in dm["text"]
    (results,) = app.slack.wait_for(lambda: uploaded(app, "-round-1-results.csv"))
    assert f"{HOLDER},,revoked,,," in results.splitlines()


def test_without_a_message_the_revoke_has_no_reason_and_workers_are_not_notified(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, HOLDER, 80)
    app.request(f"revoke {QUAL} {HOLDER} reason=internal only")
    text = message_text(app.approval_message())
    assert "None: MTurk does not notify the workers" in text and "Reason: internal only" in text
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert app.mturk.calls("DisassociateQualificationFromWorker") == [{"QualificationTypeId": QUAL, "WorkerId": HOLDER}]
    assert [r.reason for r in app.mturk.revokes] == [None]


def test_revoke_from_the_form_with_a_message_to_workers(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, HOLDER, 80)
    app.mturk.preset_grant(QUAL, HOLDER_2, 60)
    values = modal_values(QUAL, workers=f"{HOLDER} {HOLDER_2}", reason="wrong list")
    values["operation"] = {"value": {"type": "radio_buttons", "selected_option": {"value": "revoke"}}}
    values["worker_message"] = {"value": {"type": "plain_text_input", "value": "Granted by mistake, sorry"}}
    assert app.sender.submit_view(REQUESTER, values).body == ""
    text = message_text(app.approval_message())
    assert "*REVOKE*" in text and "“Granted by mistake, sorry”" in text and "Reason: wrong list" in text
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert app.mturk.revoke_counts() == {HOLDER: 1, HOLDER_2: 1}
    assert {r.reason for r in app.mturk.revokes} == {"Granted by mistake, sorry"}


def test_the_form_refuses_a_message_to_workers_on_a_grant(app: RunningApp) -> None:
    values = modal_values(QUAL, workers=HOLDER)
    values["worker_message"] = {"value": {"type": "plain_text_input", "value": "hello"}}
    answer = app.sender.submit_view(REQUESTER, values).json()
    assert answer["response_action"] == "errors" and "goes with a revoke" in answer["errors"]["worker_message"]
    assert app.grant_qual.store.get(1) is None


def test_a_worker_file_mixing_scores_and_revoke_makes_one_grant_and_revoke_request(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, HOLDER, 80)
    content = (
        f'"Worker ID","UPDATE BlockStatus","BlockReason","CURRENT-{QUAL_NAME}","UPDATE-{QUAL_NAME}"\n'
        f'"{HOLDER}","","","80","Revoke"\n'
        f'"{NEVER}","","","","90"\n'
        f'"{HOLDER_2}","","","","revoke"\n'
    ).encode()
    file = app.slack.host_file("F0MIXED", "User_123_workers.csv", content)
    metadata = json.dumps({"response_url": app.slack.response_url("upload")})
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file]), private_metadata=metadata).body == ""
    message = app.approval_message()
    text = message_text(message)
    assert "Qualification GRANT AND REVOKE request #1" in text
    assert "*GRANT AND REVOKE* — revokes the qualification from 2 worker(s) and grants it to 1" in text
    assert "1 revoke" in text and "1 do not hold it (not called)" in text and "1 new (no score yet)" in text
    assert "*GRANT AND REVOKE*" in approve_button(message)["confirm"]["text"]["text"]
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert app.mturk.holds(QUAL, HOLDER) is None and app.mturk.holds(QUAL, NEVER) == 90
    assert app.mturk.revoke_counts() == {HOLDER: 1} and app.mturk.grant_counts() == {NEVER: 1}
    summary = message_text(app.summary())
    assert f"Granted `{QUAL}` {QUAL_NAME} (value 90) to all 1 worker(s); revoked it from all 1 worker(s)" in summary


def test_a_holder_whose_qualification_moved_since_the_preview_is_left_as_it_is(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, HOLDER, 80)
    app.mturk.preset_grant(QUAL, HOLDER_2, 80)
    app.request(f"revoke {QUAL} {HOLDER} {HOLDER_2}")
    app.approval_message()
    app.mturk.preset_grant(QUAL, HOLDER_2, 95)  # someone re-scored them on the requester site meanwhile
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.FAILED
    assert app.mturk.revoke_counts() == {HOLDER: 1}
    assert app.mturk.holds(QUAL, HOLDER_2) == 95
    assert "was 80 at the preview, is 95 now; left as it is" in message_text(app.summary())


# The gateway's revoke against the fake MTurk over the wire, as test_mturk_retries does for grants.


@pytest.fixture
def gateway(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> Iterator[MTurkGateway]:
    fake_mturk.add_type(QUAL, QUAL_NAME)
    settings = load_settings(app_environment(fake_slack, fake_mturk, database_url))
    client = create_mturk_client(settings, read_timeout=0.5)
    yield MTurkGateway(client, MTurkEnvironment.SANDBOX, backoff_base=0.01)
    client.close()


def revoke_target(worker_id: str = HOLDER) -> WorkerTarget:
    return WorkerTarget(worker_id, None, Operation.REVOKE)


def test_the_fake_answers_a_revoke_of_a_non_holder_with_a_request_error(fake_mturk: FakeMTurk, gateway: Any) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        gateway.client.disassociate_qualification_from_worker(QualificationTypeId=QUAL, WorkerId=NEVER)
    assert refused.value.response["Error"]["Code"] == "RequestError"
    fake_mturk.preset_grant(QUAL, HOLDER, 80)
    gateway.client.disassociate_qualification_from_worker(QualificationTypeId=QUAL, WorkerId=HOLDER, Reason="bye")
    assert (
        gateway.client.get_qualification_score(QualificationTypeId=QUAL, WorkerId=HOLDER)["Qualification"]["Status"]
        == "Revoked"
    )
    listed = gateway.client.list_workers_with_qualification_type(QualificationTypeId=QUAL, Status="Revoked")
    assert [q["WorkerId"] for q in listed["Qualifications"]] == [HOLDER]
    with pytest.raises(ClientError):  # revoked already: it is not held
        gateway.client.disassociate_qualification_from_worker(QualificationTypeId=QUAL, WorkerId=HOLDER)


def test_a_revoke_mturk_refuses_because_the_worker_does_not_hold_it_is_done_with_a_note(
    fake_mturk: FakeMTurk, gateway: MTurkGateway
) -> None:
    outcome = gateway.revoke(revoke_target(NEVER), QUAL, None)
    assert outcome.status is WorkerStatus.GRANTED and outcome.operation is Operation.REVOKE
    assert outcome.error_code == NOT_HELD and "does not exist" in (outcome.error_message or "")
    assert fake_mturk.revoke_counts() == {}


def test_a_revoke_whose_answer_was_lost_is_read_back_and_not_called_again(
    fake_mturk: FakeMTurk, gateway: MTurkGateway
) -> None:
    fake_mturk.preset_grant(QUAL, HOLDER, 80)
    fake_mturk.fail_next("DropAfterGrant", worker_id=HOLDER)
    outcome = gateway.revoke(revoke_target(), QUAL, "bye")
    assert outcome.status is WorkerStatus.GRANTED and outcome.error_code is None
    assert len(fake_mturk.calls("DisassociateQualificationFromWorker")) == 1  # read back, not called again
    assert fake_mturk.revoke_counts() == {HOLDER: 1}


def test_a_revoke_in_doubt_after_a_crash_reads_back_first(fake_mturk: FakeMTurk, gateway: MTurkGateway) -> None:
    fake_mturk.preset_grant(QUAL, HOLDER, 80)
    fake_mturk.revoke(QUAL, HOLDER)  # the call before the crash landed
    outcome = gateway.revoke(revoke_target(), QUAL, "bye", may_have_landed=True)
    assert outcome.status is WorkerStatus.GRANTED
    assert fake_mturk.calls("DisassociateQualificationFromWorker") == []
    fake_mturk.preset_grant(QUAL, HOLDER_2, 80)  # the call before the crash did not land
    outcome = gateway.revoke(revoke_target(HOLDER_2), QUAL, "bye", may_have_landed=True)
    assert outcome.status is WorkerStatus.GRANTED and fake_mturk.revoke_counts() == {HOLDER_2: 1}


def test_a_revoke_mturk_keeps_dropping_is_bounded_and_reported_unknown(
    fake_mturk: FakeMTurk, gateway: MTurkGateway
) -> None:
    fake_mturk.preset_grant(QUAL, HOLDER, 80)
    fake_mturk.fail_next("DropBeforeGrant", times=100, worker_id=HOLDER)
    outcome = gateway.revoke(revoke_target(), QUAL, None)
    assert outcome.status is WorkerStatus.FAILED and outcome.operation is Operation.REVOKE
    assert outcome.error_code == OUTCOME_UNKNOWN
    assert len(fake_mturk.calls("DisassociateQualificationFromWorker")) == GRANT_ATTEMPTS
    assert fake_mturk.holds(QUAL, HOLDER) == 80


# Block Kit limits at the extremes: 10,000 revoked workers, a long message to workers full of & < >.


@pytest.mark.parametrize("mixed", [False, True], ids=["revoke", "grant-and-revoke"])
@pytest.mark.parametrize("decided", [False, True])
def test_revoke_messages_stay_within_block_kit_limits(mixed: bool, decided: bool) -> None:
    from tests.test_block_limits import MANY, NASTY, assert_within_limits, grant_request, worker_id

    revokes = MANY // 2 if mixed else MANY
    state = RequestState.FAILED if decided else RequestState.PENDING
    request = grant_request(MANY, state, revoke_count=revokes, worker_message=NASTY * 4, undo_of=123_456_788)
    outcomes = [
        WorkerOutcome(
            worker_id(i),
            None if i < revokes else i,
            WorkerStatus.FAILED if i % 7 == 0 else WorkerStatus.GRANTED,
            "Code" if i % 7 == 0 else None,
            f"Failure {i} " + "<&>" * 300 if i % 7 == 0 else None,
            None,
            Operation.REVOKE if i < revokes else Operation.GRANT,
        )
        for i in range(MANY)
    ]
    status = blocks.decided_status(request, " — " + blocks.outcome_line(9000, request)) if decided else None
    text, message_blocks = blocks.request_message(
        request, OutcomeDigest.of(outcomes), status, undo_link=" (<https://x.test/p1|see it>)"
    )
    assert_within_limits(text, message_blocks)
    assert "REVOKE" in text
    text, message_blocks = blocks.result_message(request, OutcomeDigest.of(outcomes), 103.4, undo=True)
    assert_within_limits(text, message_blocks)
    assert message_blocks[0]["text"]["text"].startswith(":warning: [PRODUCTION] ")


def test_migration_0008_carries_a_database_of_grants_forward(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from bot.store import MIGRATIONS, GrantStore, create_database_engine

    engine = create_database_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        conn.execute(
            text(
                "INSERT INTO grant_requests (id, requester_id, qualification_type_id, send_notification, reason, "
                "mturk_env, state, worker_count, created_at, round) VALUES "
                "(1, 'U0REQ', :qual, 1, 'old', 'sandbox', 'done', 1, '2026-01-01 00:00:00', 1)"
            ),
            {"qual": QUAL},
        )
        conn.execute(
            text(
                "INSERT INTO worker_grants (request_id, worker_id, position, integer_value, status, updated_at, round, "
                "previous_status, previous_value) VALUES (1, :worker, 0, 80, 'granted', '2026-01-01 00:00:00', 1, "
                "'Granted', 50)"
            ),
            {"worker": HOLDER},
        )
    store = GrantStore(engine)
    store.upgrade_schema()
    request = store.get(1)
    assert request is not None and request.revoke_count == 0 and request.kind_label == ""
    assert request.undone_by is None and request.undo_of is None and request.worker_message is None
    (outcome,) = store.outcomes(1)
    assert outcome.operation is Operation.GRANT
    assert store.changed_workers(1) == {HOLDER: Held(HeldStatus.GRANTED, 50)}  # an old request can be undone


def test_after_a_crash_in_doubt_revokes_are_read_back_and_only_those_that_did_not_land_are_called(
    app: RunningApp,
) -> None:
    from datetime import timedelta

    app.mturk.preset_grant(QUAL, HOLDER, 80)
    app.mturk.preset_grant(QUAL, HOLDER_2, 80)
    app.request(f"revoke {QUAL} {HOLDER} {HOLDER_2}")
    app.approval_message()
    store = app.grant_qual.store
    # An executor approved and claimed it, dispatched both calls and died; only HOLDER's call reached MTurk.
    assert store.decide(1, user_id=APPROVER, approve=True)
    assert store.claim(1, owner="died", lease=timedelta(seconds=-1), mturk_env="sandbox")
    store.mark_dispatched_through(1, 0, 1)  # HOLDER and HOLDER_2, at positions 0 and 1
    app.mturk.revoke(QUAL, HOLDER)
    assert app.grant_qual.executor.resume_unfinished() == [1]
    assert app.wait_final().state is RequestState.DONE
    assert [c["WorkerId"] for c in app.mturk.calls("DisassociateQualificationFromWorker")] == [HOLDER_2]
    assert app.mturk.holds(QUAL, HOLDER) is None and app.mturk.holds(QUAL, HOLDER_2) is None
    assert f"Revoked `{QUAL}` {QUAL_NAME} from all 2 worker(s)" in message_text(app.summary())


def test_history_says_revoked(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, HOLDER, 80)
    app.request(f"revoke {QUAL} {HOLDER} {NEVER}")
    app.approval_message()
    app.click(APPROVER, "approve_request")
    app.wait_final()
    for worker, said in ((HOLDER, ":white_check_mark: revoked"), (NEVER, "not called: did not hold it")):
        app.request(f"history {worker}", response_key=worker)
        (answer,) = app.slack.wait_for(lambda w=worker: app.slack.responses_for(w))
        assert said in message_text(answer)
