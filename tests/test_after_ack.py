"""Work done after the acknowledgement never fails silently: the failure is logged with its context, and
the requester is told where their request stands."""

from __future__ import annotations

import json
import logging
from concurrent.futures import Executor, Future
from types import SimpleNamespace
from typing import Any

import pytest

from bot.slack.after_ack import Requester, run_after_ack
from tests.conftest import CHANNEL, QUAL, REQUESTER, WORKERS, RunningApp
from tests.slack_sender import modal_values


def submit(app: RunningApp, how: str, key: str) -> None:
    """A request for one worker, typed on one line or sent from the modal, answered at response URL `key`."""
    if how == "command":
        app.request(f"{QUAL} {WORKERS[0]}", response_key=key)
    else:
        metadata = json.dumps({"response_url": app.slack.response_url(key)})
        reply = app.sender.submit_view(REQUESTER, modal_values(QUAL, WORKERS[0]), private_metadata=metadata)
        assert reply.status == 200 and reply.body == ""


def app_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("bot.") and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("how", ["command", "modal"])
def test_a_slack_call_that_throws_while_posting_is_logged_and_told(
    app: RunningApp, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    app.slack.drop_next("chat.getPermalink")  # Slack's answer is lost: slack_sdk raises, it does not retry
    submit(app, how, "posting")
    (note,) = app.slack.wait_for(lambda: app.slack.responses_for("posting"))
    assert "Something went wrong" in note["text"] and note["response_type"] == "ephemeral"
    assert "Request #1" in note["text"] and f"waiting for approval in <#{CHANNEL}>" in note["text"]
    app.slack.wait_for(lambda: app_errors(caplog))
    assert any("request #1" in line and REQUESTER in line for line in app_errors(caplog)), app_errors(caplog)
    posted = [m for m in app.slack.messages if m["channel"] == CHANNEL and not m.get("thread_ts")]
    assert len(posted) == 1  # posted once, no more (its thread has the preview CSV)


def test_a_post_slack_refuses_for_good_is_told_as_not_posted(app: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    app.slack.error_next("chat.postMessage", "channel_not_found")
    submit(app, "command", "refused")
    (note,) = app.slack.wait_for(lambda: app.slack.responses_for("refused"))
    assert "Request #1" in note["text"] and "not posted" in note["text"] and "channel_not_found" in note["text"]
    assert "as soon as Slack does" not in note["text"]  # it will not be: the outbox gave up on it
    assert any("giving up" in line for line in app_errors(caplog))


class Inline(Executor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_a_failure_before_anything_is_stored_says_nothing_was_posted(caplog: pytest.LogCaptureFixture) -> None:
    told: list[str] = []
    dms: list[dict[str, Any]] = []
    client = SimpleNamespace(chat_postMessage=lambda **kwargs: dms.append(kwargs))
    gateway = SimpleNamespace(environment="sandbox")
    context: Any = SimpleNamespace(
        after_ack=Inline(), messenger=SimpleNamespace(client=client), service=SimpleNamespace(gateway=gateway)
    )

    def broken_reply(text: str) -> None:
        told.append(text)
        raise ConnectionError("the response URL is gone")

    def job() -> None:
        raise RuntimeError("MTurk's answer could not be read")

    run_after_ack(context, Requester(REQUESTER, broken_reply), job)
    assert len(told) == 1 and "nothing was posted" in told[0]
    assert dms == [{"channel": REQUESTER, "text": told[0]}]  # the reply failed, so a DM says it
    assert any(REQUESTER in line and "not stored" in line for line in app_errors(caplog))
