"""No secret reaches a log line or Slack: the bot token, the signing secret and the AWS secret key.

A full flow (a request approved with one worker failing and an MTurk fault retried, another rejected, a
forged request, a Slack server error) runs once with every logger captured at DEBUG, and once under the
production logging set-up (bot.logs.configure_logging) writing to a buffer.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.config import load_settings
from bot.logs import JsonLines, RedactSecrets, configure_logging, log_context
from bot.requests import DeliveryState, RequestState
from tests.conftest import (
    APPROVER,
    BOT_TOKEN,
    QUAL,
    REQUESTER,
    SIGNING_SECRET,
    WORKERS,
    RunningApp,
    app_environment,
    start_app,
)
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackResponse, message_text

SECRETS = {"bot token": BOT_TOKEN, "signing secret": SIGNING_SECRET, "AWS secret key": FakeMTurk.SECRET_KEY}
NOISY = ("botocore", "boto3", "urllib3", "slack_sdk", "slack_bolt")
# A real AWS secret access key has 40 characters (AWS's documentation example).
AWS_SHAPED_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def run_full_flow(app: RunningApp) -> list[SlackResponse]:
    """Request, approve with one worker failing, reject another; plus a forged request and faults."""
    replies = []
    app.mturk.unknown_workers.add(WORKERS[2])
    app.mturk.fail_next("ServiceFault", worker_id=WORKERS[0])
    app.slack.fail_next("chat.update", 500)
    replies.append(app.request(f"{QUAL} {' '.join(WORKERS)} value=4 reason=screened", response_key="one"))
    app.approval_message(1)
    replies.append(app.click(APPROVER, "approve_request", 1))
    assert app.wait_final(1).state is RequestState.FAILED  # one of three failed
    replies.append(app.request(f"{QUAL} {WORKERS[0]}", response_key="two"))
    app.approval_message(2)
    replies.append(app.reject(APPROVER, "not this one", 2))
    assert app.wait_final(2).state is RequestState.REJECTED
    replies.append(app.request(f"{QUAL} {WORKERS[1]}", secret="not-the-signing-secret"))  # forged: refused
    replies.append(app.sender.submit_view(REQUESTER, {"workers": {"value": {"value": "bad"}}}))  # inline errors
    app.slack.wait_for(lambda: len(app.slack.dms_to(REQUESTER)) == 2)
    # Every update of the request messages is through, so nothing is still talking to Slack at the end.
    app.slack.wait_for(lambda: "granted 2 of 3" in message_text(app.approval_message(1)))
    app.slack.wait_for(lambda: "Rejected" in message_text(app.approval_message(2)))
    store = app.grant_qual.store
    app.slack.wait_for(
        lambda: all(e.delivery_state is DeliveryState.DELIVERED for e in store.events(1) + store.events(2))
    )
    assert [r.status for r in replies] == [200, 200, 200, 200, 401, 200]
    return replies


def assert_no_secret_sent(fake_slack: FakeSlack, fake_mturk: FakeMTurk, replies: list[SlackResponse]) -> None:
    """Nothing the app sent to Slack (Web API arguments, response URL bodies, HTTP answers) or put in an MTurk
    request's parameters holds a secret. (The Authorization headers carry the token, as they must.)"""
    with fake_slack.lock:
        sent = [json.dumps(call.args) for call in fake_slack.calls]
        sent += [json.dumps(body) for _, body in fake_slack.responses]
    sent += [reply.body for reply in replies]
    sent += [json.dumps(params, default=str) for _, params in fake_mturk.requests]
    assert len(sent) > 10
    for name, secret in SECRETS.items():
        leaks = [text for text in sent if secret in text]
        assert not leaks, f"the {name} was sent: {leaks[0][:300]}"


def test_no_secret_in_any_log_record_at_debug(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in NOISY:  # production pins these to WARNING; here they speak at DEBUG
        caplog.set_level(logging.DEBUG, logger=name)
    app = start_app(fake_slack, fake_mturk, database_url)
    try:
        replies = run_full_flow(app)
    finally:
        app.stop()

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records]  # with tracebacks and stacks
    loggers = {record.name.split(".")[0] for record in caplog.records if record.levelno == logging.DEBUG}
    assert {"botocore", "slack_sdk", "slack_bolt"} <= loggers, loggers  # DEBUG really was captured
    assert any("request #1 stored" in line for line in lines)
    for name, secret in SECRETS.items():
        leaks = [line for line in lines if secret in line]
        assert not leaks, f"the {name} was logged: {leaks[0][:300]}"
    assert_no_secret_sent(fake_slack, fake_mturk, replies)


@contextlib.contextmanager
def production_logging(
    secrets: tuple[str, ...], stream: io.StringIO, level: int, log_format: str = "text"
) -> Iterator[None]:
    """bot.logs.configure_logging as app.py calls it, its handler writing to `stream`; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in NOISY}
    configure_logging(secrets, level, log_format=log_format)
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield
    finally:
        root.handlers, root.level = saved_handlers, saved_level
        for name, noisy_level in saved_levels.items():
            logging.getLogger(name).setLevel(noisy_level)


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG], ids=["INFO", "DEBUG"])
def test_production_logging_emits_no_secret(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, level: int, log_format: str
) -> None:
    settings = load_settings(app_environment(fake_slack, fake_mturk, database_url, LOG_FORMAT=log_format))
    assert {BOT_TOKEN, SIGNING_SECRET} <= set(settings.secrets()) and settings.log_format == log_format
    stream = io.StringIO()
    with production_logging(settings.secrets(), stream, level, settings.log_format):
        app = start_app(fake_slack, fake_mturk, database_url)
        try:
            replies = run_full_flow(app)
            # A secret inside a message the app did not write (an error text, say) is redacted too.
            logging.getLogger("bot.test").warning("Slack said: token %s, secret %s", BOT_TOKEN, SIGNING_SECRET)
            logging.getLogger("bot.test").warning("AWS said: %s is wrong", AWS_SHAPED_SECRET)
        finally:
            app.stop()
    output = stream.getvalue()
    if log_format == "json":
        output = "\n".join(json_lines_as_text(output))
    assert "request #1 stored" in output and "request #2 rejected" in output  # the app's own lines are there
    assert "Slack said: token [redacted], secret [redacted]" in output
    assert "AWS said: [redacted] is wrong" in output
    assert " DEBUG botocore" not in output and " DEBUG slack_sdk" not in output  # pinned to WARNING
    for name, secret in {**SECRETS, "AWS-shaped secret": AWS_SHAPED_SECRET}.items():
        assert secret not in output, f"the {name} reached the production log"
    assert_no_secret_sent(fake_slack, fake_mturk, replies)


def json_lines_as_text(output: str) -> list[str]:
    """LOG_FORMAT=json: every line one JSON object with its fields; the context given where the app gives it.

    Returned as text lines ("time LEVEL logger: message"), tracebacks included, for the same checks as text."""
    records = [json.loads(line) for line in output.splitlines()]
    assert records and all({"time", "level", "logger", "message"} <= set(record) for record in records)
    stored = next(r for r in records if r["message"].startswith("request #1 stored"))
    assert (stored["request_id"], stored["user_id"], stored["event"]) == (1, REQUESTER, "stored")
    approved = next(r for r in records if r["message"].startswith("request #1 approved"))
    assert (approved["request_id"], approved["user_id"], approved["event"]) == (1, APPROVER, "approved")
    finished = next(r for r in records if r["message"].startswith("request #1 finished"))
    assert (finished["request_id"], finished["event"]) == (1, "finished")
    lines = []
    for record in records:
        lines.append(f"{record['time']} {record['level']} {record['logger']}: {record['message']}")
        lines.extend(filter(None, (record.get("exception"), record.get("stack"))))
    return lines


# ---------------------------------------------------------------------------------------------- RedactSecrets


def emitted(filter_: RedactSecrets, msg: str, *args: object, exc: BaseException | None = None) -> str:
    """What a handler with the filter writes for one record."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(filter_)
    handler.setFormatter(logging.Formatter("%(message)s"))
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    record = logging.LogRecord("bot.test", logging.ERROR, __file__, 1, msg, args or None, exc_info)
    handler.handle(record)
    return stream.getvalue()


def test_redact_secrets_removes_tokens_embedded_in_messages() -> None:
    redact = RedactSecrets([BOT_TOKEN, SIGNING_SECRET, "short"])
    assert emitted(redact, f"chat.postMessage failed for {BOT_TOKEN}: invalid_auth") == (
        "chat.postMessage failed for [redacted]: invalid_auth\n"
    )
    assert emitted(redact, "signing with %s and %s", SIGNING_SECRET, BOT_TOKEN) == (
        "signing with [redacted] and [redacted]\n"
    )
    # Tokens not configured are recognised by their shape: other bot, user and app tokens, AWS secret keys.
    for token in ("xoxb-111-222-abcDEF", "xoxp-1-2-3-zz", "xapp-1-A0-123-abcdef", AWS_SHAPED_SECRET):
        assert emitted(redact, "got %r back", token) == "got '[redacted]' back\n", token
    # Everything else is left as it is, including secrets shorter than 6 characters (too common to hunt).
    assert emitted(redact, "request #%s stored: %s workers, short", 12, 3) == "request #12 stored: 3 workers, short\n"


def test_redact_secrets_keeps_the_record_when_nothing_matches() -> None:
    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "request #%s by %s", (3, "U0APPROVE"), None)
    assert RedactSecrets([BOT_TOKEN]).filter(record) is True
    assert record.msg == "request #%s by %s" and record.args == (3, "U0APPROVE")


def test_redact_secrets_covers_tracebacks() -> None:
    error = RuntimeError(f"upstream rejected {BOT_TOKEN}")
    output = emitted(RedactSecrets([BOT_TOKEN]), "delivering events to Slack failed", exc=error)
    assert "RuntimeError" in output
    assert BOT_TOKEN not in output


def test_json_lines_are_redacted_too_context_and_tracebacks_included() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([BOT_TOKEN]))
    handler.setFormatter(JsonLines())
    error = RuntimeError(f"upstream rejected {BOT_TOKEN}")
    record = logging.LogRecord(
        "bot.test", logging.ERROR, __file__, 1, "failed with %s", (BOT_TOKEN,), (RuntimeError, error, None)
    )
    record.__dict__.update(log_context(request_id=7, user_id=f"U0{BOT_TOKEN}", event="delivery_failed"))
    handler.handle(record)
    line = json.loads(stream.getvalue())
    assert BOT_TOKEN not in stream.getvalue()
    assert (
        line["message"] == "failed with [redacted]"
        and "RuntimeError: upstream rejected [redacted]" in line["exception"]
    )
    assert (line["level"], line["logger"], line["request_id"], line["event"]) == (
        "ERROR",
        "bot.test",
        7,
        "delivery_failed",
    )
    assert line["user_id"] == "U0[redacted]"
