"""The fakes speak the real protocols: real boto3 and slack_sdk clients, unmodified, talk to them."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.fakes import FakeMTurk, FakeSlack, Grant

TYPE_ID = "3FAKEQUALTYPE000000000000000001"
FOREIGN_TYPE_ID = "3SOMEONEELSESTYPE0000000000001"
WORKER = "A1FAKEWORKER01"
TOKEN = "xoxb-test-token"


def mturk_client(
    fake: FakeMTurk, *, secret: str = FakeMTurk.SECRET_KEY, key: str = FakeMTurk.ACCESS_KEY, **config: Any
) -> Any:
    return boto3.client(
        "mturk",
        region_name="us-east-1",
        endpoint_url=fake.url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(**({"retries": {"total_max_attempts": 1}} | config)),
    )


@pytest.fixture
def mturk_fake() -> Iterator[FakeMTurk]:
    with FakeMTurk() as fake:
        fake.add_type(TYPE_ID, "Passed screener")
        fake.add_type(FOREIGN_TYPE_ID, "Another lab's type", owned=False)
        yield fake


@pytest.fixture
def mturk(mturk_fake: FakeMTurk) -> Any:
    return mturk_client(mturk_fake)


@pytest.fixture
def slack_fake() -> Iterator[FakeSlack]:
    with FakeSlack(TOKEN) as fake:
        yield fake


@pytest.fixture
def slack(slack_fake: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack_fake.api_url)


# ---------------------------------------------------------------------- MTurk


def test_associate_records_grants_with_mturk_defaults(mturk_fake: FakeMTurk, mturk: Any) -> None:
    assert (
        mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    mturk.associate_qualification_with_worker(
        QualificationTypeId=TYPE_ID, WorkerId=WORKER, IntegerValue=7, SendNotification=False
    )

    assert mturk_fake.grants_for(WORKER) == [
        Grant(TYPE_ID, WORKER, integer_value=1, send_notification=True),
        Grant(TYPE_ID, WORKER, integer_value=7, send_notification=False),
    ]
    assert mturk_fake.grant_counts() == {WORKER: 2}
    assert mturk_fake.current_value(TYPE_ID, WORKER) == 7
    assert mturk_fake.calls("AssociateQualificationWithWorker")[0] == {
        "QualificationTypeId": TYPE_ID,
        "WorkerId": WORKER,
    }


def test_missing_and_foreign_types_raise_request_error_with_turk_error_code(mturk_fake: FakeMTurk, mturk: Any) -> None:
    with pytest.raises(mturk.exceptions.RequestError) as missing:
        mturk.associate_qualification_with_worker(QualificationTypeId="3NOSUCHTYPE", WorkerId=WORKER)
    # botocore puts the modelled members of the error shape at the top of e.response, not under "Error".
    assert missing.value.response["Error"]["Code"] == "RequestError"
    assert missing.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationDoesNotExist"
    assert re.fullmatch(
        r"You requested a Qualification that does not exist\. \(\d{13}\)", missing.value.response["Error"]["Message"]
    )

    with pytest.raises(mturk.exceptions.RequestError) as foreign:
        mturk.associate_qualification_with_worker(QualificationTypeId=FOREIGN_TYPE_ID, WorkerId=WORKER)
    assert foreign.value.response["TurkErrorCode"] == FakeMTurk.NOT_OWNED_TURK_CODE
    assert mturk_fake.grants == []


@pytest.mark.parametrize("worker_id", ["A143XRCI1YXAFE", "a1lowercase", "B1NOTAWORKER", "A" + "1" * 64])
def test_unknown_or_malformed_worker_is_a_plain_parameter_validation_error(
    mturk_fake: FakeMTurk, mturk: Any, worker_id: str
) -> None:
    mturk_fake.unknown_workers.add("A143XRCI1YXAFE")
    with pytest.raises(ClientError) as raised:
        mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=worker_id)
    assert not isinstance(raised.value, mturk.exceptions.RequestError)
    assert raised.value.response["Error"] == {
        "Code": "ParameterValidationError",
        "Message": f'The value "{worker_id}" is not valid for the parameter WorkerId.',
    }
    assert mturk_fake.grants == []


def test_service_fault_is_modelled_and_retried_by_default(mturk_fake: FakeMTurk, mturk: Any) -> None:
    mturk_fake.fail_next("ServiceFault")
    with pytest.raises(mturk.exceptions.ServiceFault) as raised:
        mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert raised.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.ServiceFault"
    assert mturk_fake.grants == []

    mturk_fake.fail_next("ServiceFault", worker_id=WORKER)
    retrying = mturk_client(mturk_fake, retries={"mode": "standard", "max_attempts": 3})
    answer = retrying.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert mturk_fake.grant_counts() == {WORKER: 1}
    assert mturk_fake.injected_faults == {"ServiceFault": 2}


def test_signature_is_verified(mturk_fake: FakeMTurk) -> None:
    with pytest.raises(ClientError) as bad_secret:
        mturk_client(mturk_fake, secret="not-the-secret").get_qualification_type(QualificationTypeId=TYPE_ID)
    assert bad_secret.value.response["Error"]["Code"] == "InvalidSignatureException"

    with pytest.raises(ClientError) as bad_key:
        mturk_client(mturk_fake, key="AKIAUNKNOWN").get_qualification_type(QualificationTypeId=TYPE_ID)
    assert bad_key.value.response["Error"] == {
        "Code": "UnrecognizedClientException",
        "Message": "The security token included in the request is invalid.",
    }

    unsigned = urllib.request.Request(
        mturk_fake.url,
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "MTurkRequesterServiceV20170117.GetQualificationType",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(unsigned, timeout=5)
    assert missing.value.code == 400
    assert json.loads(missing.value.read())["__type"] == "MissingAuthenticationTokenException"
    assert mturk_fake.requests == []


def test_throttling_scripted_and_by_rate(mturk_fake: FakeMTurk, mturk: Any) -> None:
    mturk_fake.fail_next("ThrottlingException")
    with pytest.raises(ClientError) as raised:
        mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER)
    assert raised.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}

    mturk_fake.throttle_above_tps = 5
    throttled = 0
    for index in range(12):
        try:
            mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=f"A{index:05d}")
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ThrottlingException"
            throttled += 1
    assert len(mturk_fake.grants) == 12 - throttled
    assert 1 <= len(mturk_fake.grants) <= 10  # five a second, and the loop may straddle a second
    assert mturk_fake.injected_faults["ThrottlingException"] == throttled + 1


def test_list_and_get_qualification_types(mturk_fake: FakeMTurk, mturk: Any) -> None:
    for index in range(23):
        mturk_fake.add_type(f"3BULK{index:04d}", f"Bulk {index}")
    pages = mturk.get_paginator("list_qualification_types").paginate(
        MustBeRequestable=False, MustBeOwnedByCaller=True, PaginationConfig={"PageSize": 10}
    )
    listed = [qualification_type for page in pages for qualification_type in page["QualificationTypes"]]
    assert len(listed) == 24
    assert FOREIGN_TYPE_ID not in {qualification_type["QualificationTypeId"] for qualification_type in listed}

    everyone = mturk.list_qualification_types(MustBeRequestable=False, MaxResults=100)
    assert everyone["NumResults"] == 25 and "NextToken" not in everyone

    described = mturk.get_qualification_type(QualificationTypeId=TYPE_ID)["QualificationType"]
    assert described["Name"] == "Passed screener"
    assert described["QualificationTypeStatus"] == "Active"
    assert isinstance(described["CreationTime"], datetime)


def test_many_concurrent_grants_on_keep_alive_connections(mturk_fake: FakeMTurk) -> None:
    client = mturk_client(mturk_fake, max_pool_connections=32)
    workers = [f"A{index:06d}" for index in range(300)]

    def grant(worker_id: str) -> None:
        client.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=worker_id)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(grant, workers))
    assert sorted(mturk_fake.grant_counts()) == workers
    assert mturk_fake.server_errors == []


def test_random_faults_never_record_failed_grants(mturk_fake: FakeMTurk, mturk: Any) -> None:
    mturk_fake.random_faults = {"ServiceFault": 0.3, "ThrottlingException": 0.2}
    failed = 0
    for index in range(60):
        try:
            mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=f"A{index:05d}")
        except ClientError:
            failed += 1
    assert 0 < failed < 60
    assert len(mturk_fake.grants) == 60 - failed == 60 - sum(mturk_fake.injected_faults.values())


def test_get_qualification_score_after_associate(mturk_fake: FakeMTurk, mturk: Any) -> None:
    with pytest.raises(mturk.exceptions.RequestError) as none_yet:
        mturk.get_qualification_score(QualificationTypeId=TYPE_ID, WorkerId=WORKER)
    assert none_yet.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationDoesNotExist"
    assert re.fullmatch(
        r"You requested a Qualification that does not exist\. \(\d{13}\)", none_yet.value.response["Error"]["Message"]
    )

    before = datetime.now(UTC)
    mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER, IntegerValue=3)
    mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER, IntegerValue=5)
    qualification = mturk.get_qualification_score(QualificationTypeId=TYPE_ID, WorkerId=WORKER)["Qualification"]
    assert qualification["GrantTime"] == datetime.fromtimestamp(mturk_fake.grants[-1].granted_at, UTC)
    assert qualification["GrantTime"] >= before.replace(microsecond=0)
    assert {key: value for key, value in qualification.items() if key != "GrantTime"} == {
        "QualificationTypeId": TYPE_ID,
        "WorkerId": WORKER,
        "IntegerValue": 5,
        "Status": "Granted",
    }
    assert mturk_fake.calls("GetQualificationScore") == [{"QualificationTypeId": TYPE_ID, "WorkerId": WORKER}] * 2

    with pytest.raises(mturk.exceptions.RequestError) as unknown_type:
        mturk.get_qualification_score(QualificationTypeId="3NOSUCHTYPE", WorkerId=WORKER)
    assert unknown_type.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.QualificationDoesNotExist"
    mturk_fake.unknown_workers.add("A143XRCI1YXAFE")
    with pytest.raises(ClientError) as unknown_worker:
        mturk.get_qualification_score(QualificationTypeId=TYPE_ID, WorkerId="A143XRCI1YXAFE")
    assert unknown_worker.value.response["Error"] == {
        "Code": "ParameterValidationError",
        "Message": 'The value "A143XRCI1YXAFE" is not valid for the parameter WorkerId.',
    }


def test_get_qualification_score_ignores_grant_faults(mturk_fake: FakeMTurk, mturk: Any) -> None:
    mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER)
    mturk_fake.fail_next("ServiceFault")
    mturk_fake.random_faults = {"ThrottlingException": 1.0}
    mturk_fake.throttle_above_tps = 0
    assert mturk.get_qualification_score(QualificationTypeId=TYPE_ID, WorkerId=WORKER)["Qualification"]["IntegerValue"]
    assert mturk_fake.injected_faults == {}
    # The scripted fault is still queued for the next grant.
    mturk_fake.random_faults, mturk_fake.throttle_above_tps = {}, None
    with pytest.raises(mturk.exceptions.ServiceFault):
        mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER)


def test_preset_grant_is_held_but_not_a_call(mturk_fake: FakeMTurk, mturk: Any) -> None:
    preset = mturk_fake.preset_grant(TYPE_ID, WORKER, 4, granted_at=1_700_000_000.5)
    assert mturk_fake.grants == [] and mturk_fake.preset == [preset]
    assert mturk_fake.current_value(TYPE_ID, WORKER) == 4
    qualification = mturk.get_qualification_score(QualificationTypeId=TYPE_ID, WorkerId=WORKER)["Qualification"]
    assert (qualification["IntegerValue"], qualification["GrantTime"].timestamp()) == (4, 1_700_000_000.5)

    # A grant made through the API afterwards overwrites the preset value, as associating again does.
    mturk.associate_qualification_with_worker(QualificationTypeId=TYPE_ID, WorkerId=WORKER, IntegerValue=9)
    assert mturk_fake.current_value(TYPE_ID, WORKER) == 9
    assert mturk_fake.grant_counts() == {WORKER: 1}
    with pytest.raises(ValueError, match="owns"):
        mturk_fake.preset_grant(FOREIGN_TYPE_ID, WORKER, 1)


def test_account_balance_proves_the_keys(mturk_fake: FakeMTurk, mturk: Any) -> None:
    assert mturk.get_account_balance()["AvailableBalance"] == "10000.00"
    with pytest.raises(ClientError) as refused:
        mturk_client(mturk_fake, secret="wrong/secret").get_account_balance()
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


# ---------------------------------------------------------------------- Slack


def test_auth_and_messages(slack_fake: FakeSlack, slack: WebClient) -> None:
    assert slack.auth_test()["user_id"] == "UBOT"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Grant *3* workers?"}}]
    posted = slack.chat_postMessage(channel="C0APPROVALS", text="Grant 3 workers?", blocks=blocks)
    assert re.fullmatch(r"\d{10}\.\d{6}", posted["ts"])

    updated = slack.chat_update(channel="C0APPROVALS", ts=posted["ts"], text="Approved")
    assert updated["message"]["blocks"] == blocks  # Slack keeps blocks the update leaves out
    message = slack_fake.message("C0APPROVALS", posted["ts"])
    assert message is not None and message["text"] == "Approved" and message["history"][0]["text"] == "Grant 3 workers?"

    reply = slack.chat_postMessage(channel="C0APPROVALS", thread_ts=posted["ts"], text="Granted")
    assert float(reply["ts"]) > float(posted["ts"])
    assert [m["text"] for m in slack_fake.thread_replies("C0APPROVALS", posted["ts"])] == ["Granted"]
    assert slack.chat_getPermalink(channel="C0APPROVALS", message_ts=posted["ts"])["permalink"] == (
        f"https://fake.slack.com/archives/C0APPROVALS/p{posted['ts'].replace('.', '')}"
    )

    dm = slack.chat_postMessage(channel="U0REQUEST", text="Your request was approved")
    assert dm["channel"] == "DU0REQUEST"
    assert [m["text"] for m in slack_fake.dms_to("U0REQUEST")] == ["Your request was approved"]

    with pytest.raises(SlackApiError) as unknown:
        slack.chat_update(channel="C0APPROVALS", ts="1.000000", text="x")
    assert unknown.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as bad_token:
        WebClient(token="xoxb-wrong", base_url=slack_fake.api_url).auth_test()
    assert bad_token.value.response["error"] == "invalid_auth"


@pytest.mark.parametrize(
    ("block", "pointer"),
    [
        ({"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}, "/blocks/0/text/text"),
        ({"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}, "/blocks/0/fields/0/text"),
        ({"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}, "/blocks/0/fields"),
        ({"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3001}]}, "/blocks/0/elements/0/text"),
        ({"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}] * 11}, "/blocks/0/elements"),
        ({"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}, "/blocks/0/text/text"),
        ({"type": "section", "text": {"type": "mrkdwn", "text": ""}}, "/blocks/0/text/text"),
        (
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x" * 76}}]},
            "/blocks/0/elements/0/text/text",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Go"},
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Sure?"},
                            "text": {"type": "mrkdwn", "text": "x" * 301},
                            "confirm": {"type": "plain_text", "text": "Yes"},
                            "deny": {"type": "plain_text", "text": "No"},
                        },
                    }
                ],
            },
            "/blocks/0/elements/0/confirm/text/text",
        ),
    ],
    ids=[
        "section-text",
        "field",
        "eleven-fields",
        "context-text",
        "eleven-elements",
        "header",
        "empty",
        "button",
        "confirm",
    ],
)
def test_blocks_over_slacks_limits_are_refused(
    slack_fake: FakeSlack, slack: WebClient, block: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as refused:
        slack.chat_postMessage(channel="C0APPROVALS", text="x", blocks=[block])
    assert refused.value.response["error"] == "invalid_blocks"
    assert f"[json-pointer:{pointer}]" in refused.value.response["response_metadata"]["messages"][0]
    with pytest.raises(SlackApiError) as too_long:
        slack.chat_postMessage(channel="C0APPROVALS", text="x" * 40_001)
    assert too_long.value.response["error"] == "msg_too_long"
    assert slack_fake.messages == []


def test_form_encoded_json_fields_are_decoded(slack_fake: FakeSlack, slack: WebClient) -> None:
    blocks = [{"type": "divider"}]
    slack.api_call("chat.postMessage", params={"channel": "C1", "text": "[not json]", "blocks": json.dumps(blocks)})
    call = slack_fake.calls_to("chat.postMessage")[0]
    assert call.args["blocks"] == blocks and call.args["text"] == "[not json]"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"


def test_files_upload_v2_into_a_thread(slack_fake: FakeSlack, slack: WebClient) -> None:
    parent = slack.chat_postMessage(channel="C0APPROVALS", text="Request #1")
    uploaded = slack.files_upload_v2(
        channel="C0APPROVALS",
        thread_ts=parent["ts"],
        filename="outcomes.csv",
        content="worker_id,outcome\nA1,granted\n",
        initial_comment="Outcomes",
    )
    file_id = uploaded["file"]["id"]
    stored = slack_fake.uploaded_files[file_id]
    assert stored["bytes"] == b"worker_id,outcome\nA1,granted\n"
    assert (stored["filename"], stored["title"], stored["channel"], stored["thread_ts"]) == (
        "outcomes.csv",
        "outcomes.csv",
        "C0APPROVALS",
        parent["ts"],
    )
    [share] = slack_fake.thread_replies("C0APPROVALS", parent["ts"])
    assert share["text"] == "Outcomes" and share["files"][0]["id"] == file_id
    assert slack.files_info(file=file_id)["file"]["name"] == "outcomes.csv"


def test_views_and_trigger_ids(slack_fake: FakeSlack, slack: WebClient) -> None:
    view = {"type": "modal", "callback_id": "grant", "title": {"type": "plain_text", "text": "Grant"}, "blocks": []}
    trigger_id = slack_fake.new_trigger_id()
    opened = slack.views_open(trigger_id=trigger_id, view=view)["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "grant"

    updated = slack.views_update(
        view_id=opened["id"], hash=opened["hash"], view={**view, "blocks": [{"type": "divider"}]}
    )
    assert updated["view"]["blocks"] == [{"type": "divider"}]
    with pytest.raises(SlackApiError) as stale:
        slack.views_update(view_id=opened["id"], hash=opened["hash"], view=view)
    assert stale.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as reused:
        slack.views_open(trigger_id=trigger_id, view=view)
    assert reused.value.response["error"] == "trigger_exchanged"
    assert slack.conversations_open(users="U0REQUEST")["channel"]["id"] == "DU0REQUEST"


def test_rate_limit_raises_and_retry_handler_recovers(slack_fake: FakeSlack, slack: WebClient) -> None:
    slack_fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        slack.chat_postMessage(channel="C1", text="hello")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert slack_fake.messages == []

    slack_fake.fail_next("chat.postMessage", status=429, retry_after=0)
    patient = WebClient(token=TOKEN, base_url=slack_fake.api_url, retry_handlers=[RateLimitErrorRetryHandler()])
    assert patient.chat_postMessage(channel="C1", text="hello")["ok"]
    assert [call.injected for call in slack_fake.calls_to("chat.postMessage")] == ["429", "429", None]
    assert len(slack_fake.messages) == 1


def test_server_error_and_dropped_response(slack_fake: FakeSlack, slack: WebClient) -> None:
    slack_fake.fail_next("chat.postMessage", status=503)
    with pytest.raises(SlackApiError) as unavailable:
        slack.chat_postMessage(channel="C1", text="hello")
    assert unavailable.value.response.status_code == 503

    # slack_sdk's default ConnectionErrorRetryHandler resends once, so a dropped answer posts twice.
    slack_fake.drop_next("chat.postMessage")
    slack.chat_postMessage(channel="C1", text="once?")
    assert [m["text"] for m in slack_fake.messages] == ["once?", "once?"]
    assert slack_fake.injected_faults == {"503": 1, "drop": 1}


def test_response_urls(slack_fake: FakeSlack) -> None:
    url = slack_fake.response_url("cmd-1")
    request = urllib.request.Request(
        url, data=json.dumps({"text": "Queued"}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert (answer.status, answer.read()) == (200, b"ok")
    sent = WebhookClient(url).send(text="Done", response_type="ephemeral", replace_original=True)
    assert (sent.status_code, sent.body) == (200, "ok")
    assert slack_fake.responses_for("cmd-1") == [
        {"text": "Queued"},
        {"text": "Done", "response_type": "ephemeral", "replace_original": True},
    ]


def test_private_file_download_needs_the_bot_token(slack_fake: FakeSlack, slack: WebClient) -> None:
    file = slack_fake.host_file("F0WORKERS", "workers.csv", b"A1\nA2\n")
    assert file["mimetype"] == "text/csv" and file["size"] == 6
    assert slack.files_info(file="F0WORKERS")["file"]["url_private_download"] == file["url_private_download"]

    authorized = urllib.request.Request(file["url_private_download"], headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(authorized, timeout=5) as answer:
        assert answer.read() == b"A1\nA2\n"
    # Without the token Slack redirects to its sign-in page: a 200 of HTML, not the file.
    with urllib.request.urlopen(file["url_private"], timeout=5) as answer:
        assert answer.headers.get_content_type() == "text/html"
    wrong = urllib.request.Request(file["url_private"], headers={"Authorization": "Bearer xoxb-wrong"})
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        urllib.request.urlopen(wrong, timeout=5)
    assert forbidden.value.code == 403


def test_wait_for_explains_a_timeout(slack_fake: FakeSlack, slack: WebClient) -> None:
    slack.auth_test()
    assert slack_fake.wait_for(lambda: slack_fake.calls_to("auth.test"), timeout=1)
    with pytest.raises(AssertionError, match=r"timed out after 0.1s .*auth\.test"):
        slack_fake.wait_for(lambda: slack_fake.messages, timeout=0.1)


def test_conversations_replies_with_metadata(slack_fake: FakeSlack, slack: WebClient) -> None:
    metadata = {"event_type": "grant_result", "event_payload": {"request_id": 1}}
    parent = slack.chat_postMessage(channel="C0APPROVALS", text="Request #1")
    first = slack.chat_postMessage(channel="C0APPROVALS", thread_ts=parent["ts"], text="Granted", metadata=metadata)
    # The same metadata sent form-encoded, as a JSON string.
    slack.api_call(
        "chat.postMessage",
        params={"channel": "C0APPROVALS", "thread_ts": parent["ts"], "text": "Again", "metadata": json.dumps(metadata)},
    )
    slack.chat_postMessage(channel="C0APPROVALS", text="Another request")

    thread = slack.conversations_replies(channel="C0APPROVALS", ts=parent["ts"], include_all_metadata=True)
    assert (thread["has_more"], thread["response_metadata"]) == (False, {"next_cursor": ""})
    head, *replies = thread["messages"]
    assert (head["ts"], head["thread_ts"], head["text"], head["reply_count"]) == (
        parent["ts"],
        parent["ts"],
        "Request #1",
        2,
    )
    assert "metadata" not in head
    assert [(m["text"], m["thread_ts"], m["user"], m["bot_id"], m["type"]) for m in replies] == [
        ("Granted", parent["ts"], "UBOT", "B0001", "message"),
        ("Again", parent["ts"], "UBOT", "B0001", "message"),
    ]
    assert [m["metadata"] for m in replies] == [metadata, metadata]
    assert replies[0]["ts"] == first["ts"]

    plain = slack.conversations_replies(channel="C0APPROVALS", ts=parent["ts"])["messages"]
    assert [m["ts"] for m in plain] == [m["ts"] for m in thread["messages"]]
    assert not any("metadata" in m for m in plain)
    # A reply's ts names its whole thread.
    assert len(slack.conversations_replies(channel="C0APPROVALS", ts=first["ts"])["messages"]) == 3

    for channel, ts in (("C0APPROVALS", "1.000000"), ("C0OTHER", parent["ts"])):
        with pytest.raises(SlackApiError) as missing:
            slack.conversations_replies(channel=channel, ts=ts)
        assert missing.value.response["error"] == "thread_not_found"


def test_unavailable_answers_503_and_applies_nothing(slack_fake: FakeSlack, slack: WebClient) -> None:
    slack_fake.fail_next("chat.postMessage", status=429)
    slack_fake.unavailable = True
    for _ in range(2):
        with pytest.raises(SlackApiError) as down:
            slack.chat_postMessage(channel="C1", text="hello")
        assert down.value.response.status_code == 503
        # slack_sdk turns the empty body into this error of its own.
        assert down.value.response.data == {"ok": False, "error": "Received a response in a non-JSON format: "}
    with pytest.raises(SlackApiError):
        slack.auth_test()
    assert slack_fake.messages == []
    assert slack_fake.injected_faults == {"unavailable": 3}
    assert [call.injected for call in slack_fake.calls] == ["unavailable"] * 3
    assert slack_fake.calls[0].args == {"channel": "C1", "text": "hello"}

    # Response URLs still work, and the queued fault is still there once Slack is back.
    sent = WebhookClient(slack_fake.response_url("cmd-1")).send(text="Done")
    assert sent.status_code == 200
    slack_fake.unavailable = False
    with pytest.raises(SlackApiError) as limited:
        slack.chat_postMessage(channel="C1", text="hello")
    assert limited.value.response.status_code == 429
    assert slack.chat_postMessage(channel="C1", text="hello")["ok"]


def test_every_answer_to_a_known_token_carries_its_scopes(slack_fake: FakeSlack, slack: WebClient) -> None:
    slack_fake.bot_scopes = {"chat:write", "commands"}
    assert slack.auth_test().headers["x-oauth-scopes"] == "chat:write,commands"
    with pytest.raises(SlackApiError) as missing:
        slack.conversations_history(channel="C1")
    assert missing.value.response["error"] == "missing_scope"
    assert missing.value.response.headers["x-oauth-scopes"] == "chat:write,commands"
    with pytest.raises(SlackApiError) as no_gateway:  # no Socket Mode gateway attached: refused, still with scopes
        slack.apps_connections_open(app_token=slack_fake.app_token)
    assert no_gateway.value.response.headers["x-oauth-scopes"] == "connections:write"
    with pytest.raises(SlackApiError) as unknown:
        WebClient(token="xoxb-unknown", base_url=slack_fake.api_url).auth_test()
    assert "x-oauth-scopes" not in unknown.value.response.headers


def test_channels_the_bot_is_not_in_or_that_do_not_exist(slack_fake: FakeSlack, slack: WebClient) -> None:
    slack_fake.channels_without_bot.add("C0NOTJOINED")
    slack_fake.missing_channels.add("C0GONE")
    for method in (slack.conversations_history, lambda channel: slack.chat_postMessage(channel=channel, text="hi")):
        with pytest.raises(SlackApiError) as outside:
            method(channel="C0NOTJOINED")
        assert outside.value.response["error"] == "not_in_channel"
        with pytest.raises(SlackApiError) as gone:
            method(channel="C0GONE")
        assert gone.value.response["error"] == "channel_not_found"
    assert slack.conversations_history(channel="C0JOINED", limit=1)["ok"]
    assert not slack_fake.messages
