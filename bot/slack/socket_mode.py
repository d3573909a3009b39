"""The Socket Mode connection: Bolt's handler on slack_sdk's built-in client, kept alive by a watchdog.

The built-in client on its own notices a connection that the server ended without a close frame only when its
pongs are four ping intervals stale, and until then its receive loop spins a CPU core on the socket's EOF
(measured: bench/socket_mode_clients.py). Here every socket the client opens is wrapped so that an EOF or a
reset is reported at once and the loop is paced, and `ConnectionWatchdog` owns reconnecting: a connection
that was lost, or that has heard nothing (not even a pong) for `dead_after` seconds, is replaced through a
fresh `apps.connections.open`, with backoff and jitter when that fails, and each reconnect logs one line.
Slack's own `disconnect` (refresh) is still followed by the client itself; the watchdog only logs it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackClientError
from slack_sdk.socket_mode.builtin.client import SocketModeClient
from slack_sdk.socket_mode.builtin.connection import Connection
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.metrics import AppMetrics

log = logging.getLogger(__name__)

PING_INTERVAL = 5.0  # the client pings this often; the server's pongs are the traffic a quiet app hears
DEAD_AFTER = 10.0  # two missed pongs: the connection is dead even though the socket looks open
CHECK_EVERY = 0.5
EOF_PACE = 0.1  # how often the client's receive loop may see a dead socket's EOF before it is replaced
# The client holds a session's receive lock while it waits in recv (3 s by default), and closing the session
# takes that lock: after Slack's refresh, the new connection was not read until the old one's recv timed out.
RECEIVE_TIMEOUT = 0.5


class WatchedSocket:
    """A client socket that tells the watchdog of traffic and of its end, and never lets EOF be a busy loop."""

    def __init__(self, sock: Any, on_traffic: Callable[[], None], on_lost: Callable[[str], None]) -> None:
        self._sock = sock
        self._on_traffic = on_traffic
        self._on_lost = on_lost
        self._closed = False

    def recv(self, size: int) -> bytes:
        try:
            data: bytes = self._sock.recv(size)
        except TimeoutError:
            raise  # the client's receive timeout: an idle connection, not a lost one
        except OSError as error:
            if self._closed:
                raise
            self._lost(f"{type(error).__name__}: {error.strerror or error}")
            return b""
        if data:
            self._on_traffic()
        elif size and not self._closed:
            self._lost("the server ended the connection without a close frame")
        return data

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _lost(self, reason: str) -> None:
        self._on_lost(reason)
        time.sleep(EOF_PACE)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class WatchedSocketModeClient(SocketModeClient):
    """The built-in client whose sessions report traffic and loss to `watchdog` (set before connecting)."""

    watchdog: ConnectionWatchdog | None = None

    def connect(self) -> None:
        super().connect()
        session = self.current_session
        watchdog = self.watchdog
        if watchdog is not None and session is not None and session.sock is not None:
            session.sock.settimeout(RECEIVE_TIMEOUT)
            session.sock = WatchedSocket(session.sock, watchdog.heard, lambda reason: watchdog.lost(session, reason))
            watchdog.heard()


class ConnectionWatchdog:
    """Replaces a lost or silent Socket Mode connection; time and randomness are inputs, for tests."""

    def __init__(
        self,
        client: SocketModeClient,
        *,
        dead_after: float = DEAD_AFTER,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        first_backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._client = client
        self._dead_after = dead_after
        self._clock = clock
        self._jitter = jitter
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._lock = threading.Lock()
        self._last_heard = clock()
        self._lost_reason: str | None = None
        self._session: Connection | None = client.current_session
        self._failures = 0
        self._next_attempt = 0.0
        self._outage_since: float | None = None
        self.reconnects = 0
        self._stop = threading.Event()
        self._wake = threading.Event()  # a lost socket is acted on at once, not at the next check
        self._thread = threading.Thread(target=self._run, name="socket-mode-watchdog", daemon=True)

    def heard(self) -> None:
        with self._lock:
            self._last_heard = self._clock()

    def lost(self, session: Connection | None, reason: str) -> None:
        """A session's socket ended; only the current session's end matters (old ones are closed on purpose)."""
        with self._lock:
            if session is self._client.current_session and self._lost_reason is None:
                self._lost_reason = reason
                self._wake.set()

    def start(self) -> None:
        self._session = self._client.current_session
        self.heard()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(CHECK_EVERY)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception:  # the watchdog must outlive any one failure
                log.exception("Socket Mode watchdog check failed")

    def check(self) -> None:
        """One look at the connection: note a refresh the client made, or reconnect a dead connection."""
        now = self._clock()
        current = self._client.current_session
        if current is not self._session and self._client.is_connected():
            self._session = current
            self._reconnected(now, "Slack asked for a refresh")
            return
        reason = self._why_dead(now)
        if reason is None:
            return
        if self._outage_since is None:
            self._outage_since = now
            log.warning("Socket Mode connection lost (%s); reconnecting", reason)
        if now >= self._next_attempt:
            self._reconnect(reason)

    def _why_dead(self, now: float) -> str | None:
        with self._lock:
            if self._lost_reason is not None:
                return self._lost_reason
            if not self._client.is_connected():
                return "the connection is closed"
            if now - self._last_heard > self._dead_after:
                return f"nothing heard for {now - self._last_heard:.0f} s, not even a pong"
        return None

    def _reconnect(self, reason: str) -> None:
        try:
            with self._client.connect_operation_lock:
                self._client.wss_uri = self._client.issue_new_wss_url()
                self._client.connect()  # the built-in client logs and swallows a failed connect: look below
        except (SlackClientError, OSError) as error:
            self._failed(type(error).__name__)
            return
        if not self._client.is_connected():
            self._failed("the new connection did not open")
            return
        with self._lock:
            self._lost_reason = None
        self._session = self._client.current_session
        self._reconnected(self._clock(), reason)

    def _reconnected(self, now: float, reason: str) -> None:
        outage = now - self._outage_since if self._outage_since is not None else 0.0
        self.reconnects += 1
        self._failures = 0
        self._next_attempt = 0.0
        self._outage_since = None
        self.heard()
        log.info("Socket Mode reconnected after %.1f s (%s)", outage, reason)

    def _failed(self, why: str) -> None:
        self._failures += 1
        backoff = min(self._max_backoff, self._first_backoff * 2 ** (self._failures - 1))
        delay = backoff * (0.5 + self._jitter() / 2)  # jitter: replicas that lost Slack together retry apart
        self._next_attempt = self._clock() + delay
        log.warning("Socket Mode reconnect failed (%s); next try in %.1f s", why, delay)


class TimedSocketModeHandler(SocketModeHandler):
    """Bolt's handler on the watched client; it also measures the time from an envelope to its ack."""

    def __init__(self, app: Any, app_token: str, *, metrics: AppMetrics, dead_after: float = DEAD_AFTER) -> None:
        # Bolt's __init__ only builds its own client; this builds the watched one in its place. The client's INFO
        # lines (every session opened and closed) stay out of the log: the watchdog writes one line per
        # reconnect; the client's warnings and errors still show.
        self.app = app
        self.app_token = app_token
        sdk_log = logging.getLogger("slack_sdk.socket_mode.builtin")
        sdk_log.setLevel(logging.WARNING)
        self.client = WatchedSocketModeClient(
            app_token=app_token,
            logger=sdk_log,
            web_client=app.client,
            proxy=app.client.proxy,
            auto_reconnect_enabled=False,  # the watchdog reconnects, once, with backoff
            ping_interval=PING_INTERVAL,
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
        self.watchdog = ConnectionWatchdog(self.client, dead_after=dead_after)
        self.client.watchdog = self.watchdog
        self._metrics = metrics

    def connect(self) -> None:
        super().connect()
        self.watchdog.start()

    def close(self) -> None:
        self.watchdog.stop()
        super().close()

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        super().handle(client, req)
        self._metrics.observe_ack("socket_mode", started)
