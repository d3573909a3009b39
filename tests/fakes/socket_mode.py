"""Slack's Socket Mode gateway, on loopback: a real WebSocket server speaking Slack's envelope protocol.

The app calls `apps.connections.open` with its app-level token (fake Slack answers with this gateway's
URL), connects, gets `hello`, and then receives envelopes: `slash_commands`, `interactive` and `events_api`,
each acknowledged by sending back `{"envelope_id": ..., "payload": ...}`. A test sends an envelope as Slack
would and gets the app's acknowledgement back.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from websockets.sync.server import ServerConnection, serve


class FakeSocketMode:
    def __init__(self) -> None:
        self._server = serve(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.socket.getsockname()[1])
        self._changed = threading.Condition()
        self._connections: list[ServerConnection] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self.connections_opened = 0
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """What `apps.connections.open` hands out; ws:// on a port other than 443 is how slack_sdk tests too."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4().hex}"

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
        finally:
            with self._changed:
                self._connections.remove(connection)
                self._changed.notify_all()
