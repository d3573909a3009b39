"""The HTTP gate: a body over the cap gets 413 without being held in memory, a malformed unsigned request gets
401 (never 500), and a signed command reaches its listener whatever words its fields hold."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.config import MTurkEnvironment
from bot.slack import blocks
from bot.slack.http_gate import MAX_BODY_BYTES
from tests.app_process import AppProcess
from tests.conftest import QUAL, REQUESTER, SIGNING_SECRET, WORKERS, RunningApp, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import modal_values, signature

# ---------------------------------------------------------------------------------------------- malformed


def unsigned(app: RunningApp, body: bytes, headers: dict[str, str]) -> int:
    return app.sender.send(body, {"Content-Type": "application/x-www-form-urlencoded", **headers}).status


def assert_nothing_happened(app: RunningApp) -> None:
    time.sleep(0.2)
    assert app.grant_qual.store.requests() == []
    # Bolt may call auth.test once, lazily; nothing else reaches Slack.
    assert app.slack.responses == [] and {c.method for c in app.slack.calls} <= {"auth.test"}


def now() -> str:
    return str(int(time.time()))


FORM = urllib.parse.urlencode(
    {"command": "/grant-qual", "text": f"{QUAL} {WORKERS[0]}", "user_id": REQUESTER, "trigger_id": "t1"}
).encode()
FORGED = "v0=" + "0" * 64


@pytest.mark.parametrize(
    "headers",
    [
        # str.isdigit() takes '²' (sent as latin-1, the byte b'\xb2'); int() does not.
        pytest.param({"X-Slack-Request-Timestamp": "²", "X-Slack-Signature": FORGED}, id="superscript-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": FORGED}, id="huge-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "-1", "X-Slack-Signature": FORGED}, id="negative-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "", "X-Slack-Signature": FORGED}, id="empty-timestamp"),
        pytest.param({"X-Slack-Signature": FORGED}, id="no-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": ""}, id="empty-signature"),
        pytest.param({"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "v0=é"}, id="non-ascii-signature"),
        pytest.param({"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "garbled"}, id="garbled-signature"),
        pytest.param({"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "v0=" + "Z" * 64}, id="non-hex"),
        pytest.param({"X-Slack-Request-Timestamp": "NOW"}, id="no-signature"),
        pytest.param({}, id="no-headers"),
    ],
)
def test_malformed_unsigned_requests_get_401(app: RunningApp, headers: dict[str, str]) -> None:
    headers = {name: now() if value == "NOW" else value for name, value in headers.items()}
    assert unsigned(app, FORM, headers) == 401
    assert_nothing_happened(app)


def test_a_body_that_is_not_utf8_gets_401_unsigned_and_400_signed(app: RunningApp) -> None:
    body = b"command=%2Fgrant-qual&text=\xff\xfe\x80 " + FORM
    assert unsigned(app, body, {"X-Slack-Request-Timestamp": now(), "X-Slack-Signature": FORGED}) == 401
    # Signed with the real secret, it is still not something Slack sends: a clear 400, not 500.
    ts = now()
    assert (
        unsigned(app, body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature(SIGNING_SECRET, ts, body)})
        == 400
    )
    assert_nothing_happened(app)


@pytest.mark.parametrize("payload", ["not json", "[]", '"text"'])
def test_a_signed_payload_that_is_not_a_json_object_gets_400(app: RunningApp, payload: str) -> None:
    assert app.sender.post({"payload": payload}).status == 400
    assert_nothing_happened(app)


# ---------------------------------------------------------------------------------------------- the body cap


def raw_post(url: str, head: dict[str, str], body_chunks: Iterable[bytes] = ()) -> tuple[int | None, int]:
    """POST over a plain socket, sending the body until the server answers or closes.

    Returns (the status the server answered, or None if it only closed the connection; body bytes sent).
    """
    parsed = urllib.parse.urlsplit(url)
    lines = [f"POST {parsed.path} HTTP/1.1", f"Host: {parsed.netloc}", *(f"{k}: {v}" for k, v in head.items())]
    sent = 0
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        sock.settimeout(0.05)
        answer = b""
        for chunk in body_chunks:
            try:
                answer = sock.recv(65536)  # answered (or closed) already?
                break
            except TimeoutError:
                pass
            except OSError:
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            answer = answer or sock.recv(65536)
    if answer.startswith(b"HTTP/1.1 "):
        return int(answer.split()[1]), sent
    return None, sent


def megabytes(total: int, chunked: bool = False) -> Iterator[bytes]:
    block = b"x" * 1024 * 1024
    for _ in range(total):
        yield b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
    if chunked:
        yield b"0\r\n\r\n"


def test_a_body_over_the_cap_gets_413_before_it_is_sent(app: RunningApp) -> None:
    head = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(100 * 1024 * 1024)}
    assert raw_post(app.url, head) == (413, 0)  # answered from the headers alone
    assert_nothing_happened(app)


def test_a_body_one_byte_over_the_cap_gets_413_unread_and_one_at_the_cap_is_taken(app: RunningApp) -> None:
    # One byte over: refused by size, before any signature check.
    assert unsigned(app, b"x" * (MAX_BODY_BYTES + 1), {}) == 413
    # Exactly at the cap, signed: taken.
    form = app.sender.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}")
    padding = MAX_BODY_BYTES - len(urllib.parse.urlencode(form).encode())
    form["team_domain"] += "x" * padding
    body, headers = app.sender.prepare(form)
    assert len(body) == MAX_BODY_BYTES
    assert app.sender.send(body, headers).status == 200
    assert app.slack.wait_for(lambda: app.grant_qual.store.requests())


def test_a_chunked_body_growing_past_the_cap_gets_413(app: RunningApp) -> None:
    head = {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"}
    status, sent = raw_post(app.url, head, megabytes(100, chunked=True))
    assert status in (413, None) and sent < 20 * 1024 * 1024  # refused (or cut off) long before the end
    assert_nothing_happened(app)


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what was read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "the gate must never read without a bound"
        self.read_bytes += size
        return b"x" * size


def test_the_gate_reads_a_body_without_length_only_up_to_the_cap(app: RunningApp) -> None:
    """A WSGI server that passes a chunked body through (wsgi.input_terminated) gets 413 at the cap."""
    body = EndlessBody()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "wsgi.input": body,
        "wsgi.input_terminated": True,
    }
    statuses: list[str] = []
    app.grant_qual.wsgi()(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["413 Content Too Large"]
    assert MAX_BODY_BYTES < body.read_bytes <= MAX_BODY_BYTES + 64 * 1024

    for declared in (str(MAX_BODY_BYTES + 1), "9" * 5000):
        statuses.clear()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/slack/events",
            "wsgi.input": body,
            "CONTENT_LENGTH": declared,
        }
        app.grant_qual.wsgi()(environ, lambda status, headers: statuses.append(status))
        assert statuses == ["413 Content Too Large"]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (Linux's VmHWM): what a 100 MB body would have raised."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from /proc")
def test_100_mb_posts_do_not_raise_the_apps_peak_memory(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, tmp_path: Path
) -> None:
    process = AppProcess(app_environment(fake_slack, fake_mturk, database_url), tmp_path, name="http").start()
    try:
        pid = process.process.pid  # type: ignore[union-attr]
        before = peak_rss_mb(pid)
        declared = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(100 * 1024 * 1024)}
        assert raw_post(process.events_url, declared, megabytes(100))[0] in (413, None)
        chunked = {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"}
        assert raw_post(process.events_url, chunked, megabytes(100, chunked=True))[0] in (413, None)
        grown = peak_rss_mb(pid) - before
        assert grown < 10, f"the app's peak memory grew by {grown:.0f} MB"
        assert process.process.poll() is None  # type: ignore[union-attr]
    finally:
        process.stop()


def largest_modal_submission(sender: Any) -> dict[str, str]:
    """The grant modal submitted with every box at Slack's 3,000 characters, each an emoji (escaped to
    16 bytes by JSON then URL encoding), and a 10,000-row batch results CSV uploaded, as Slack sends it: a
    file object with its metadata and a preview of its first lines, never the content."""
    row = 'A1B2C3D4E5F6G7H8,3ABCDEFGHIJKLMNOPQRS,Approved,1700000000,"an answer"'
    preview = "\n".join([row] * 100)
    url = "https://files.slack.com/files-pri/T0001-F0123456789/batch_5123456_batch_results.csv"
    upload = {
        "id": "F0123456789",
        "created": 1700000000,
        "timestamp": 1700000000,
        "name": "Batch_5123456_batch_results.csv",
        "title": "Batch_5123456_batch_results.csv",
        "mimetype": "text/csv",
        "filetype": "csv",
        "pretty_type": "CSV",
        "user": REQUESTER,
        "size": 4_000_000,
        "mode": "snippet",
        "is_external": False,
        "is_public": False,
        "url_private": url,
        "url_private_download": url + "?download=1",
        "permalink": "https://lab.slack.com/files/U0REQUEST/F0123456789/batch_5123456_batch_results.csv",
        "preview": preview,
        "preview_highlight": "<div><pre>" + preview.replace("\n", "</pre><pre>") + "</pre></div>",
        "lines": 10001,
        "lines_more": 9901,
        "preview_is_truncated": True,
    }
    typed = "\U0001f600" * 3000
    values = modal_values(typed, typed, typed, True, typed, files=[upload])
    modal = blocks.grant_modal(MTurkEnvironment.SANDBOX, {"response_url": sender.response_base + "big"})
    payload = sender.view_submission_payload(REQUESTER, values, private_metadata=modal["private_metadata"])
    payload["view"] = {**modal, **payload["view"]}  # Slack sends the whole view back, blocks and all
    return {"payload": json.dumps(payload)}


def test_the_largest_modal_submission_is_well_under_the_cap(app: RunningApp) -> None:
    form = largest_modal_submission(app.sender)
    size = len(urllib.parse.urlencode(form).encode())
    assert 150_000 < size < MAX_BODY_BYTES / 3, size  # a margin of more than three times
    reply = app.sender.post(form)
    assert reply.status == 200 and reply.json()["response_action"] == "errors"


# ---------------------------------------------------------------------------------------------- Bolt's parsing

COMMAND_FIELDS = ("text", "user_name", "channel_name", "team_domain")


@pytest.mark.parametrize("field", COMMAND_FIELDS)
def test_a_command_with_the_word_payload_in_any_field_is_handled(app: RunningApp, field: str) -> None:
    form = app.sender.command_form(REQUESTER, f"{QUAL} {WORKERS[0]}", response_key="word")
    form[field] += " reason=the payload={type: view_submission}" if field == "text" else "-payload"
    reply = app.sender.post(form)
    assert reply.status == 200, reply
    (answer,) = app.slack.wait_for(lambda: app.slack.responses_for("word"))
    assert "Request #1" in answer["text"]


# Words Bolt's parsing looked for, characters that matter in forms and JSON, and anything at all.
words = st.sampled_from(
    ["payload", "{", "}", "type", "ssl_check", "=", "&", "url_verification", "command", "%", "+", "é", "日本", "1"]
) | st.text(max_size=12)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fields=st.fixed_dictionaries({field: st.lists(words, max_size=6) for field in COMMAND_FIELDS}))
@example(fields={"text": ["payload"], "user_name": ["{"], "channel_name": ["ssl_check=1"], "team_domain": ["&"]})
@example(fields={"text": ['{"type":"url_verification"}'], "user_name": [], "channel_name": [], "team_domain": []})
def test_any_words_in_a_commands_fields_reach_the_listener(app: RunningApp, fields: dict[str, list[str]]) -> None:
    key = f"words-{time.monotonic_ns()}"
    opened = len(app.slack.calls_to("views.open"))
    form = app.sender.command_form(REQUESTER, "", response_key=key)
    form.update({field: " ".join(drawn) for field, drawn in fields.items()})
    reply = app.sender.post(form)
    assert reply.status == 200, reply
    if form["text"].strip():
        app.slack.wait_for(lambda: app.slack.responses_for(key))  # answered: usage, errors or the request
    else:
        app.slack.wait_for(lambda: len(app.slack.calls_to("views.open")) > opened)  # the form opened
