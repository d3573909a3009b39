"""Bolt's Socket Mode handler, with the time from an envelope's arrival to its acknowledgement measured."""

from __future__ import annotations

import time

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin.client import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.metrics import AppMetrics


class TimedSocketModeHandler(SocketModeHandler):
    """Bolt runs the listeners' ack and sends it in `handle`; the time it takes is Slack's wait."""

    def __init__(self, *args: object, metrics: AppMetrics, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._metrics = metrics

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        super().handle(client, req)
        self._metrics.observe_ack("socket_mode", started)
