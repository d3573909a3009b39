"""The HTTP plumbing the fake servers share: a threaded HTTP/1.1 server on 127.0.0.1, its lifecycle,
and plain request/response values, so each fake only decides what to answer."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class HttpRequest:
    """One request as the fake sees it; header names are lower-cased."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string, keep_blank_values=True))


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Close the connection without writing anything, as a proxy or a crashed server would.
    drop: bool = False


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def text_response(text: str, status: int = 200, content_type: str = "text/plain") -> HttpResponse:
    return HttpResponse(status, text.encode(), f"{content_type}; charset=utf-8")


class FakeHttpServer:
    """Base class of the fakes: owns the listening socket, the serving thread and open connections."""

    def __init__(self) -> None:
        self.url = ""
        self.port = 0
        # Exceptions raised by the fake itself; a test that sees a 500 can print these.
        self.server_errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Idle keep-alive connections would otherwise keep answering after stop().
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.handle(request)
        except Exception:
            self.server_errors.append(traceback.format_exc())
            return text_response("fake server error, see server_errors", 500)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts of hundreds of concurrent connections must queue, not be refused.
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, fake: FakeHttpServer) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with getfqdn, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that dies mid-request (a replica killed on purpose) is expected; anything else is printed.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so urllib3 can keep connections alive; every answer therefore carries Content-Length.
    protocol_version = "HTTP/1.1"
    # Headers and body written separately, unbuffered, meet Nagle and delayed ACK: 40 ms per answer.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        split = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=split.path,
            query_string=split.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )
        response = self.server.fake._serve(request)
        if response.drop:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailers end with an empty line.
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
