"""The Socket Mode watchdog's decisions, with its clock and jitter as inputs and a stand-in for the client."""

from __future__ import annotations

import itertools
import logging
import threading

import pytest

from bot.slack.socket_mode import ConnectionWatchdog, WatchedSocket


class Session:
    def __init__(self, active: bool) -> None:
        self.active = active


class StubClient:
    """What the watchdog uses of slack_sdk's client: the current session, the lock, a URL, connect."""

    def __init__(self) -> None:
        self.current_session: Session | None = Session(active=True)
        self.connect_operation_lock = threading.Lock()
        self.wss_uri: str | None = None
        self.opens = 0
        self.resolvable = True

    def is_connected(self) -> bool:
        return self.current_session is not None and self.current_session.active

    def issue_new_wss_url(self) -> str:
        self.opens += 1
        return f"wss://gateway/{self.opens}"

    def connect(self) -> None:
        self.current_session = Session(active=self.resolvable)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client() -> StubClient:
    return StubClient()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def watchdog_for(client: StubClient, clock: Clock) -> ConnectionWatchdog:
    watchdog = ConnectionWatchdog(client, dead_after=10, clock=clock, jitter=lambda: 1.0)  # type: ignore[arg-type]
    watchdog.heard()
    return watchdog


def test_a_connection_that_hears_pongs_is_left_alone(client: StubClient, clock: Clock) -> None:
    watchdog = watchdog_for(client, clock)
    for _ in range(10):
        clock.now += 5
        watchdog.heard()
        watchdog.check()
    assert client.opens == 0 and watchdog.reconnects == 0


def test_a_silent_connection_is_replaced_after_dead_after_seconds(client: StubClient, clock: Clock) -> None:
    watchdog = watchdog_for(client, clock)
    clock.now += 10
    watchdog.check()
    assert client.opens == 0
    clock.now += 0.5
    watchdog.check()
    assert client.opens == 1 and watchdog.reconnects == 1 and client.is_connected()


def test_a_lost_socket_is_replaced_at_once_and_an_old_one_ending_is_ignored(
    client: StubClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    watchdog = watchdog_for(client, clock)
    old = client.current_session
    watchdog.lost(old, "reset")  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="bot.slack.socket_mode"):
        watchdog.check()
    assert client.opens == 1 and client.current_session is not old
    assert [r.getMessage() for r in caplog.records if "reconnected" in r.getMessage()] == [
        "Socket Mode reconnected after 0.0 s (reset)"
    ]
    watchdog.lost(old, "closed on purpose")  # type: ignore[arg-type]
    watchdog.check()
    assert client.opens == 1


def test_failed_reconnects_back_off_and_never_spin(client: StubClient, clock: Clock) -> None:
    watchdog = watchdog_for(client, clock)
    client.resolvable = False
    watchdog.lost(client.current_session, "reset")  # type: ignore[arg-type]
    attempts_at: list[float] = []
    for _ in range(400):  # 100 s of checks every 0.25 s
        before = client.opens
        watchdog.check()
        if client.opens > before:
            attempts_at.append(clock.now)
        clock.now += 0.25
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts_at)]
    assert gaps[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]  # jitter 1.0: the full backoff
    assert max(gaps) <= 30.25 and len(attempts_at) < 12
    client.resolvable = True
    clock.now += 30
    watchdog.check()
    assert client.is_connected() and watchdog.reconnects == 1


def test_jitter_spreads_retries_between_half_and_all_of_the_backoff(client: StubClient, clock: Clock) -> None:
    watchdog = ConnectionWatchdog(client, clock=clock, jitter=lambda: 0.0)  # type: ignore[arg-type]
    client.resolvable = False
    client.current_session = None
    watchdog.check()
    clock.now += 0.49
    watchdog.check()
    assert client.opens == 1
    clock.now += 0.02
    watchdog.check()
    assert client.opens == 2


def test_a_refresh_the_client_made_itself_is_logged_once(
    client: StubClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    watchdog = watchdog_for(client, clock)
    client.current_session = Session(active=True)  # the client followed Slack's `disconnect` by itself
    with caplog.at_level(logging.INFO, logger="bot.slack.socket_mode"):
        watchdog.check()
        watchdog.check()
    assert client.opens == 0
    expected = "Socket Mode reconnected after 0.0 s (Slack asked for a refresh)"
    assert [r.getMessage() for r in caplog.records] == [expected]


class EndedSocket:
    def __init__(self, error: OSError | None = None) -> None:
        self.error = error

    def recv(self, size: int) -> bytes:
        if self.error is not None:
            raise self.error
        return b""

    def close(self) -> None:
        pass


@pytest.mark.parametrize("error", [None, ConnectionResetError(104, "Connection reset by peer")])
def test_a_watched_socket_reports_its_end_once_per_read_and_paces_the_reader(error: OSError | None) -> None:
    lost: list[str] = []
    sock = WatchedSocket(EndedSocket(error), on_traffic=lambda: None, on_lost=lost.append)
    assert sock.recv(1024) == b"" and sock.recv(1024) == b""
    assert len(lost) == 2
    sock.close()
    if error is None:
        assert sock.recv(1024) == b"" and len(lost) == 2  # closed on purpose: not a loss
