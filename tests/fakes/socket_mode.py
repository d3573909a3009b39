"""Slack's Socket Mode gateway, on loopback: a real WebSocket server speaking Slack's envelope protocol.

The app calls `apps.connections.open` with its app-level token (fake Slack answers with this gateway's
URL), connects, gets `hello`, and then receives envelopes: `slash_commands`, `interactive` and `events_api`,
each acknowledged by sending back `{"envelope_id": ..., "payload": ...}`. A test sends an envelope as Slack
would and gets the app's acknowledgement back.

Faults, as the app meets them in production: `fault("half_close")` ends the server's side of TCP (FIN) and
stops reading, with no close frame, as a proxy or load balancer timing out does; `"drop"` closes both ways
without a close frame; `"reset"` aborts it (RST); `"freeze"` keeps the socket open but answers nothing, not
even pings (a hung server or a black-holed link); `"refresh"` is Slack's own `disconnect` message, then a
proper close after a grace period. `fail_next_opens(n)` makes the next n `apps.connections.open` answers
name a host that does not resolve. A faulted connection gets no more envelopes, as with Slack.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import uuid
from typing import Any, Literal

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

Fault = Literal["half_close", "drop", "reset", "freeze", "refresh"]
# A leading hyphen makes the C library refuse the name before it asks any DNS server (res_hnok): a real
# resolution failure (socket.gaierror) without a packet leaving the machine.
UNRESOLVABLE_HOST = "-gateway.invalid"


class FakeSocketMode:
    def __init__(self) -> None:
        self._server = serve(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.socket.getsockname()[1])
        self._changed = threading.Condition()
        self._connections: list[ServerConnection] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self.connections_opened = 0
        self.urls_handed_out = 0  # apps.connections.open answers: each reconnect must ask for a fresh URL
        self._unresolvable_opens = 0
        self._released = threading.Event()  # frozen connections stay frozen until the gateway closes
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """What `apps.connections.open` hands out; ws:// on a port other than 443 is how slack_sdk tests too."""
        with self._changed:
            self.urls_handed_out += 1
            if self._unresolvable_opens:
                self._unresolvable_opens -= 1
                return f"wss://{UNRESOLVABLE_HOST}/link/?ticket={uuid.uuid4().hex}"
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4().hex}"

    def fail_next_opens(self, count: int) -> None:
        """The next `count` URLs handed out name a host that does not resolve (DNS failure on reconnect)."""
        with self._changed:
            self._unresolvable_opens = count

    def wait_connections_opened(self, count: int, timeout: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.connections_opened >= count, timeout)

    def fault(self, kind: Fault, connection: int = -1, grace: float = 1.0) -> None:
        """Break the chosen connection (the newest by default) the way `kind` says; see the module docstring."""
        with self._changed:
            chosen = self._connections.pop(connection)
            self._changed.notify_all()
        if kind == "refresh":
            chosen.send(json.dumps({"type": "disconnect", "reason": "refresh_requested", "debug_info": {}}))
            threading.Timer(grace, chosen.close).start()
            return
        # Holding the library's protocol lock stops it from reading, answering pings or closing properly.
        chosen.protocol_mutex.acquire()
        raw = chosen.socket
        if kind == "half_close":
            raw.shutdown(socket.SHUT_WR)
        elif kind == "drop":
            raw.shutdown(socket.SHUT_RDWR)
        elif kind == "reset":
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.shutdown(socket.SHUT_RD)  # wakes the library's blocked recv, so that close() really sends RST
            time.sleep(0.05)
            raw.close()
        threading.Thread(target=self._release_later, args=(chosen,), daemon=True).start()

    def _release_later(self, connection: ServerConnection) -> None:
        self._released.wait()
        connection.protocol_mutex.release()

    def wait_connected(self, timeout: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._connections), timeout)

    def wait_disconnected(self, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._connections, timeout)

    @property
    def connected(self) -> bool:
        with self._changed:
            return bool(self._connections)

    def send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        timeout: float = 5.0,
        retry_attempt: int = 0,
        connection: int = -1,
    ) -> dict[str, Any]:
        """Deliver an envelope to the connected app; its acknowledgement (raises if none comes in time).

        Slack delivers an envelope again when it saw no acknowledgement: the same payload, `retry_attempt` > 0.
        With several apps connected (replicas) `connection` picks one, in the order they connected.
        """
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._connections), timeout):
                raise AssertionError("no app is connected to the Socket Mode gateway")
            chosen = self._connections[connection]
        chosen.send(json.dumps(envelope))
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self._acks, timeout):
                raise AssertionError(f"the app did not acknowledge the {envelope_type} envelope within {timeout} s")
            return self._acks.pop(envelope_id)

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._thread.join(5)

    def _serve(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": "A0APP"},
                }
            )
        )
        with self._changed:
            self._connections.append(connection)
            self.connections_opened += 1
            self._changed.notify_all()
        try:
            for message in connection:
                data = json.loads(message)
                if "envelope_id" in data:
                    with self._changed:
                        self._acks[data["envelope_id"]] = data
                        self._changed.notify_all()
        except ConnectionClosed:
            pass  # a fault, or the app went away: the connection ends either way
        finally:
            with self._changed:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._changed.notify_all()
