"""The HTTP gate: everything a request over HTTP passes before Bolt sees it.

In order: the body is read in bounded chunks, and one over MAX_BODY_BYTES gets 413 without being held in
memory; a request without a valid Slack signature from the last five minutes gets 401, however malformed
its headers or body; only then is the body handed to Bolt, parsed by its fields (see SlackFormHandler).
What a signed request may then do (each command and form submission taken once) is bot/slack/deliveries.py.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_bolt.response import BoltResponse

# Slack's own payloads are small: the grant modal submitted with every box full (4 x 3,000 characters, each
# escaped to 16 bytes in the worst case) and an uploaded file's metadata comes to about 220 KB; a typical
# 10,000-worker submission (the workers in the file, which is downloaded separately) to about 9 KB.
MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_MAX_AGE_SECONDS = 5 * 60
_READ_CHUNK_BYTES = 64 * 1024
# Slack's headers, exactly: ASCII digits (str.isdigit() also takes '²', which int() refuses, and int()
# refuses more than 4,300 digits) and "v0=" with a hex SHA-256.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

StartResponse = Callable[..., Any]


class Refused(Exception):
    """A request the gate answers itself, with this status line."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status

    def respond(self, start_response: StartResponse) -> list[bytes]:
        body = self.status.encode()
        start_response(self.status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]


class SlackHttpGate:
    """The WSGI application served over HTTP: bounded body, then Slack's signature, then Bolt."""

    def __init__(
        self,
        bolt_handler: SlackRequestHandler,
        signing_secret: str,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bolt_handler = bolt_handler
        self._secret = signing_secret.encode()
        self.max_body_bytes = max_body_bytes
        self._clock = clock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                body = read_body(environ, self.max_body_bytes)
                if not self.signed_by_slack(environ, body):
                    raise Refused("401 Unauthorized")
                body.decode("utf-8")  # signed yet not UTF-8: not something Slack sends, and Bolt cannot read it
            except Refused as refusal:
                return refusal.respond(start_response)
            except UnicodeDecodeError:
                return Refused("400 Bad Request").respond(start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.bolt_handler(environ, start_response)

    def signed_by_slack(self, environ: dict[str, Any], body: bytes) -> bool:
        """Slack's v0 signature over the raw bytes, from the last five minutes; never raises.

        Computed here on bytes rather than with slack_sdk's SignatureVerifier, which raises (so the server
        answers 500) on a non-ASCII signature, a timestamp of non-ASCII digits, or a body that is not UTF-8.
        """
        timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""))
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE", ""))
        if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
            return False
        if abs(self._clock() - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
            return False
        expected = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature[3:])


def read_body(environ: dict[str, Any], max_bytes: int) -> bytes:
    """The request body, read in chunks and never more than `max_bytes` of it (Refused 413 beyond).

    A declared Content-Length over the cap is refused before anything is read. A body without one (chunked,
    when the server passes it through as wsgi.input_terminated) is read until it ends or passes the cap.
    """
    declared = str(environ.get("CONTENT_LENGTH") or "")
    if declared:
        if not (declared.isascii() and declared.isdigit()):
            raise Refused("400 Bad Request")
        too_many_digits = len(declared.lstrip("0")) > len(str(max_bytes))  # and int() refuses 4,300+ digits
        if too_many_digits or int(declared) > max_bytes:
            raise Refused("413 Content Too Large")
        remaining = int(declared)
    elif environ.get("wsgi.input_terminated"):
        remaining = max_bytes + 1
    else:
        return b""  # PEP 3333: no Content-Length and no terminated input means no body
    stream = environ["wsgi.input"]
    body = bytearray()
    while remaining > 0:
        chunk = stream.read(min(_READ_CHUNK_BYTES, remaining))
        if not chunk:
            break
        body += chunk
        remaining -= len(chunk)
        if len(body) > max_bytes:
            raise Refused("413 Content Too Large")
    return bytes(body)


def parse_slack_body(raw_body: str, content_type: str | None) -> dict[str, Any]:
    """What Slack sent, by its fields: JSON (Events API), a form with one `payload` field holding JSON
    (interactivity: buttons, form submissions), or a plain form (slash commands). ValueError otherwise."""
    if not raw_body:
        return {}
    if content_type == "application/json":
        parsed: Any = json.loads(raw_body)
    else:
        form = dict(parse_qsl(raw_body, keep_blank_values=True))
        parsed = json.loads(form["payload"]) if "payload" in form else form
    if not isinstance(parsed, dict):
        raise ValueError("a Slack request body is a JSON object or a form")
    return parsed


class SlackFormHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, with the body parsed by its fields instead of by Bolt's guess.

    Bolt 1.30's parse_body (slack_bolt/request/internals.py) tests the raw text: a body containing the
    substring "payload" anywhere is taken for an interactivity form, and its `payload` field is looked up;
    a slash command has none, so its body becomes {} and no listener matches: Slack gets 404 "unhandled
    request" and the user sees "dispatch_failed". Anyone can trigger it by typing the word in the command's
    text, or by having it in their user name, the channel name or the workspace domain. So the body is
    parsed here by its fields (parse_slack_body) and given to Bolt; raw_body stays the bytes Slack signed,
    which Bolt's own signature check reads.
    """

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        raw_body = request.get_body()
        bolt_request = BoltRequest(body="", query=request.query_string, headers=request.get_headers())
        try:
            body = parse_slack_body(raw_body, bolt_request.content_type)
        except ValueError:
            return BoltResponse(status=400, body="Bad Request")
        bolt_request.raw_body = raw_body
        bolt_request.body = body
        bolt_request.context = build_context(BoltContext(), body)
        return self.app.dispatch(bolt_request)
