"""Socket Mode that stays connected: `python app.py` against a gateway that breaks its connection as networks do.

After each fault (the server half-closes, drops or resets TCP without a close frame, goes silent, asks for a
refresh, or the next `apps.connections.open` names a host that does not resolve) a command sent after the
fault is answered within 15 s of it, the app asked for a fresh URL, spent little CPU during the outage (no busy
loop), and logged one line for the reconnect.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.app_process import AppProcess
from tests.conftest import QUAL, REQUESTER, SIGNING_SECRET, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.fakes.socket_mode import FakeSocketMode, Fault
from tests.slack_sender import SlackSender

RECONNECT_WITHIN = 15.0
OUTAGE_CPU_SECONDS = 2.0
RECONNECTED = "Socket Mode reconnected"


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
    process = AppProcess(env, tmp_path, name="socket-mode-faults")
    process.start(ready=lambda: gateway.connected)
    yield process
    process.stop()


def cpu_seconds(process: AppProcess) -> float:
    assert process.process is not None
    times = psutil.Process(process.process.pid).cpu_times()
    return float(times.user + times.system)


def command_answered_after(
    fault: Fault, socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack, unresolvable_opens: int = 0
) -> float:
    """Break the connection, send a command at once; the seconds from the fault to the command's answer."""
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    gateway.fail_next_opens(unresolvable_opens)
    urls_before, cpu_before = gateway.urls_handed_out, cpu_seconds(socket_app)
    faulted_at = time.monotonic()
    gateway.fault(fault)
    command = slack.command_form(REQUESTER, f"{QUAL} not-a-worker", response_key="after")
    assert gateway.send("slash_commands", command, timeout=RECONNECT_WITHIN)["envelope_id"]
    (answer,) = fake_slack.wait_for(lambda: fake_slack.responses_for("after"), timeout=RECONNECT_WITHIN)
    answered_in = time.monotonic() - faulted_at
    assert "Nothing was posted" in answer["text"]
    outage_cpu = cpu_seconds(socket_app) - cpu_before
    assert outage_cpu < OUTAGE_CPU_SECONDS, f"{outage_cpu:.1f} s of CPU during a {answered_in:.1f} s outage"
    assert gateway.urls_handed_out == urls_before + 1 + unresolvable_opens  # a fresh apps.connections.open each try
    return answered_in


@pytest.mark.parametrize("fault", ["half_close", "drop", "reset", "freeze", "refresh"])
def test_a_command_after_the_connection_breaks_is_answered_within_15_s(
    fault: Fault, socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack
) -> None:
    answered_in = command_answered_after(fault, socket_app, gateway, fake_slack)
    assert answered_in < RECONNECT_WITHIN
    assert gateway.connections_opened == 2
    time.sleep(1.5)  # a second reconnect, if one were coming, would show by now
    assert socket_app.log().count(RECONNECTED) == 1, socket_app.log()
    assert gateway.connections_opened == 2


@pytest.mark.parametrize("fault", ["reset", "refresh"])
def test_a_host_that_does_not_resolve_on_reconnect_is_retried_with_backoff(
    fault: Fault, socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack
) -> None:
    answered_in = command_answered_after(fault, socket_app, gateway, fake_slack, unresolvable_opens=2)
    assert answered_in < RECONNECT_WITHIN
    log = socket_app.log()
    assert log.count(RECONNECTED) == 1, log
    assert log.count("Socket Mode reconnect failed") == (2 if fault == "reset" else 1), log


def test_commands_right_after_a_refresh_are_acknowledged_promptly(
    socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack
) -> None:
    """The client stopped reading the new connection until the old one's receive timeout (3 s) ran out."""
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    for number in range(4):
        gateway.fault("refresh", grace=5.0)
        started = time.monotonic()
        command = slack.command_form(REQUESTER, f"{QUAL} not-a-worker", response_key=f"refresh-{number}")
        gateway.send("slash_commands", command, timeout=RECONNECT_WITHIN)
        assert time.monotonic() - started < 1.5, f"refresh {number}: ack after {time.monotonic() - started:.1f} s"


def test_the_connection_survives_faults_one_after_another(
    socket_app: AppProcess, gateway: FakeSocketMode, fake_slack: FakeSlack
) -> None:
    faults: list[Fault] = ["half_close", "reset", "refresh", "drop"]
    for number, fault in enumerate(faults, start=2):
        gateway.fault(fault)
        assert gateway.wait_connections_opened(number, timeout=RECONNECT_WITHIN), f"no reconnect after {fault}"
        assert gateway.wait_connected(timeout=5)
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    gateway.send("slash_commands", slack.command_form(REQUESTER, f"{QUAL} not-a-worker", response_key="last"))
    fake_slack.wait_for(lambda: fake_slack.responses_for("last"))
    assert socket_app.log().count(RECONNECTED) == len(faults)
