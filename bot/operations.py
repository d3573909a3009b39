"""The operator's HTTP routes: GET /healthz and GET /metrics, in front of the Slack gate or on their own port.

They need no Slack signature and answer only GET; every other path goes to the app behind them unchanged (in
HTTP mode the Slack gate, whose checks stay as they are). /healthz says whether the process is up and the
database answers; /metrics is bot/metrics.py's registry in Prometheus' text format. Neither shows a worker ID,
a Slack user or a secret. In Socket Mode (or with METRICS_PORT set) OperationsServer serves the same two
routes on a port of their own, from a daemon thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.engine import Engine
from waitress.server import create_server

from bot.metrics import AppMetrics, database_answers

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class OperationsRoutes:
    """A WSGI app: /healthz and /metrics here; anything else to `inner` (404 without one), its ack timed."""

    def __init__(self, engine: Engine, metrics: AppMetrics, inner: WsgiApp | None = None) -> None:
        self._engine = engine
        self._metrics = metrics
        self._inner = inner

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in (HEALTH_PATH, METRICS_PATH):
            if environ.get("REQUEST_METHOD") != "GET":
                allow = [("Allow", "GET")]
                return _respond(start_response, "405 Method Not Allowed", b"GET only\n", "text/plain", allow)
            return self._health(start_response) if path == HEALTH_PATH else self._exposition(start_response)
        if self._inner is None:
            return _respond(start_response, "404 Not Found", b"Not Found\n", "text/plain")
        return self._inner(environ, self._timed(start_response))

    def _health(self, start_response: StartResponse) -> list[bytes]:
        if database_answers(self._engine):
            return _respond(start_response, "200 OK", b'{"status":"ok"}', "application/json")
        body = json.dumps({"status": "unavailable", "database": "unreachable"}).encode()
        return _respond(start_response, "503 Service Unavailable", body, "application/json")

    def _exposition(self, start_response: StartResponse) -> list[bytes]:
        return _respond(start_response, "200 OK", self._metrics.exposition(), CONTENT_TYPE_LATEST)

    def _timed(self, start_response: StartResponse) -> StartResponse:
        """start_response that records the time to a Slack request's acknowledgement (a 2xx answer)."""
        started = time.perf_counter()

        def timed_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("2"):
                self._metrics.observe_ack("http", started)
            return start_response(status, headers) if exc_info is None else start_response(status, headers, exc_info)

        return timed_start_response


def _respond(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str,
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    start_response(status, [*headers, *extra])
    return [body]


class OperationsServer:
    """/healthz and /metrics on a port of their own (Socket Mode has no HTTP server), served by waitress."""

    def __init__(self, routes: OperationsRoutes, port: int, host: str = "0.0.0.0") -> None:
        self._server: Any = create_server(routes, host=host, port=port, threads=2, ident="grant-qual")
        self._thread = threading.Thread(target=self._server.run, name="operations-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket and open connections from waitress's own loop (closing them from this
        thread would race its poll), then let its worker threads end."""

        def close_everything() -> None:
            for dispatcher in list(self._server._map.values()):
                dispatcher.close()

        try:
            self._server.trigger.pull_trigger(close_everything)
        except OSError:
            close_everything()
        self._thread.join(10)
        self._server.task_dispatcher.shutdown()
