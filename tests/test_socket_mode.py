"""Socket Mode, the default: `python app.py` with an app-level token, over a real WebSocket to fake Slack.

The app opens its connection with apps.connections.open, receives envelopes as Slack sends them, and must
acknowledge each one; what it then does goes through the same Web API and MTurk fakes as in HTTP mode.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import GrantStore, create_database_engine
from tests.app_process import AppProcess, free_port
from tests.conftest import APPROVER, CHANNEL, OUTSIDER, QUAL, REQUESTER, SIGNING_SECRET, app_environment, posted_for
from tests.fakes import FakeMTurk, FakeSlack
from tests.fakes.socket_mode import FakeSocketMode
from tests.slack_sender import SlackSender, modal_values

WORKERS = ["A1SOCKETMODE0001", "A1SOCKETMODE0002"]


@pytest.fixture
def gateway(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    socket_mode = FakeSocketMode()
    fake_slack.socket_mode = socket_mode
    yield socket_mode
    fake_slack.socket_mode = None
    socket_mode.close()


@pytest.fixture
def socket_app(
    gateway: FakeSocketMode, fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path
) -> Iterator[AppProcess]:
    env = app_environment(fake_slack, fake_mturk, database_url, SLACK_APP_TOKEN=fake_slack.app_token)
    process = AppProcess(env, tmp_path, name="socket-mode")
    process.start(ready=lambda: gateway.connected)
    yield process
    process.stop()


def test_request_and_approval_over_socket_mode(
    socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str
) -> None:
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    store = GrantStore(create_database_engine(database_url))
    assert "Socket Mode" in socket_app.log()
    assert fake_slack.calls_to("apps.connections.open")[0].headers["authorization"] == f"Bearer {fake_slack.app_token}"

    ack = gateway.send(
        "slash_commands", slack.command_form(REQUESTER, f"{QUAL} {' '.join(WORKERS)} value=7 reason=pilot")
    )
    assert ack["envelope_id"]
    request = fake_slack.wait_for(lambda: (r := store.get(1)) and r.message_ts and r)
    message = fake_slack.message(CHANNEL, request.message_ts)
    assert message is not None and "A1SOCKETMODE0001" in str(message["blocks"])

    outsider_click = slack.click_payload(
        OUTSIDER, "approve_request", "1", message_ts=request.message_ts, response_key="no"
    )
    gateway.send("interactive", outsider_click)
    (refusal,) = fake_slack.wait_for(lambda: fake_slack.responses_for("no"))
    assert "Only approvers" in refusal["text"]
    assert fake_mturk.grant_counts().total() == 0

    gateway.send("interactive", slack.click_payload(APPROVER, "approve_request", "1", message_ts=request.message_ts))

    def finished() -> list:
        replies = fake_slack.thread_replies(CHANNEL, request.message_ts)
        return [m for m in replies if posted_for(m) == "finished"]

    (summary,) = fake_slack.wait_for(finished, timeout=20)
    assert "all 2 worker(s)" in summary["text"]
    assert {w: fake_mturk.current_value(QUAL, w) for w in WORKERS} == {w: 7 for w in WORKERS}
    assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}
    assert fake_slack.app_token not in socket_app.log() and fake_slack.bot_token not in socket_app.log()


def test_bad_command_over_socket_mode_is_answered_and_posts_nothing(
    socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack, fake_mturk: FakeMTurk
) -> None:
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    gateway.send("slash_commands", slack.command_form(REQUESTER, f"{QUAL} not-a-worker", response_key="bad"))
    (answer,) = fake_slack.wait_for(lambda: fake_slack.responses_for("bad"))
    assert "Nothing was posted" in answer["text"]
    assert not fake_slack.messages and not fake_mturk.calls("AssociateQualificationWithWorker")


def test_sigterm_in_socket_mode_closes_the_connection_and_exits_cleanly(
    socket_app: AppProcess, gateway: FakeSocketMode
) -> None:
    assert socket_app.terminate(timeout=20) == 0
    assert "stopped" in socket_app.log()
    assert gateway.wait_disconnected(timeout=5)


def test_a_re_delivered_envelope_is_taken_once(
    socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack, database_url: str
) -> None:
    """Socket Mode delivers an envelope again when its acknowledgement was not seen: one request each."""
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    store = GrantStore(create_database_engine(database_url))
    command = slack.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}", response_key="typed")
    metadata = json.dumps({"response_url": fake_slack.response_url("submitted")})
    submission = slack.view_submission_payload(REQUESTER, modal_values(QUAL, WORKERS[1]), private_metadata=metadata)
    for attempt in range(3):
        assert gateway.send("slash_commands", command, retry_attempt=attempt)["envelope_id"]
        assert "payload" not in gateway.send("interactive", submission, retry_attempt=attempt)
    fake_slack.wait_for(lambda: len([r for r in store.requests() if r.message_ts]) == 2)
    time.sleep(0.5)
    assert len(store.requests()) == 2
    assert len(fake_slack.responses_for("typed")) == 1 and len(fake_slack.responses_for("submitted")) == 1
    assert len([m for m in fake_slack.messages if m["channel"] == CHANNEL and not m["thread_ts"]]) == 2


def test_metrics_port_serves_healthz_and_metrics_in_socket_mode(
    gateway: FakeSocketMode, fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path
) -> None:
    """Socket Mode has no HTTP server of its own: with METRICS_PORT the operator's routes get one, stopped at exit."""
    metrics_port = free_port()
    env = app_environment(
        fake_slack, fake_mturk, database_url, SLACK_APP_TOKEN=fake_slack.app_token, METRICS_PORT=str(metrics_port)
    )
    process = AppProcess(env, tmp_path, name="socket-mode-metrics").start(ready=lambda: gateway.connected)
    try:
        base = f"http://127.0.0.1:{metrics_port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            assert (answer.status, json.loads(answer.read())) == (200, {"status": "ok"})
        slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
        gateway.send("slash_commands", slack.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}", response_key="typed"))
        fake_slack.wait_for(lambda: fake_slack.responses_for("typed"))
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
        assert 'grant_qual_slack_ack_seconds_count{kind="socket_mode"} 1.0' in metrics
        assert 'grant_qual_requests{state="pending"} 1.0' in metrics
        assert WORKERS[0] not in metrics and REQUESTER not in metrics and fake_slack.app_token not in metrics
        assert process.terminate(timeout=20) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", metrics_port), timeout=1).close()
    finally:
        process.stop()
