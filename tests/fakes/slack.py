"""A fake Slack Web API that a real slack_sdk ``WebClient`` (and so a Bolt app) talks to over HTTP.

It owns one workspace as the bot sees it: the messages and threads the bot posted, the modals it opened,
the files it uploaded or may download, the replies sent to response URLs, and the faults a test can inject
(rate limits, server errors, Slack errors, dropped responses). Only the methods grant-qual uses are served.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import email.parser
import email.policy
import json
import mimetypes
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote

from tests.fakes._http import FakeHttpServer, HttpRequest, HttpResponse, json_response, text_response
from tests.fakes.socket_mode import FakeSocketMode

T = TypeVar("T")

TEAM_ID = "T0001"
BOT_USER_ID = "UBOT"
BOT_ID = "B0001"
APP_ID = "A0APP"  # the app the tests sign payloads for (api_app_id)
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
# Block Kit's published limits, which Slack enforces with invalid_blocks (invalid_arguments in a view).
MAX_TEXT_OBJECT = 3000  # any text object, so a section's text and a context element's too
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_CONFIRM_TEXTS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
# Form fields that carry user text: never decoded as JSON even when they happen to look like it.
FREE_TEXT_FIELDS = frozenset({"text", "initial_comment", "title", "alt_txt", "filename", "content", "private_metadata"})
_FILETYPE_MIMETYPES = {
    "csv": "text/csv",
    "text": "text/plain",
    "txt": "text/plain",
    "json": "application/json",
}


@dataclass(frozen=True)
class SlackCall:
    """One Web API call as received; ``headers`` has lower-cased names.

    ``injected`` names the fault the fake answered with instead of (or, for "drop", after) applying the call:
    "429", "500", "503", ..., "drop", "error:<code>", or "unavailable" (see FakeSlack.unavailable); None for a
    normal answer.
    """

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    injected: str | None = None


class _SlackError(Exception):
    """Ends a Web API method with ``{"ok": false, "error": ...}``, as Slack answers on HTTP 200."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []


class FakeSlack(FakeHttpServer):
    """The Slack workspace of one bot, served on 127.0.0.1; ``lock`` guards the public state."""

    def __init__(
        self, bot_token: str = "xoxb-test-token", *, app_token: str = "xapp-1-test-app-token", seed: int = 0
    ) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.app_token = app_token  # the app-level token: Socket Mode's apps.connections.open, nothing else
        self.socket_mode: FakeSocketMode | None = None  # attach one to let the app connect in Socket Mode
        # The bot token's scopes (from manifest.yml in the tests): a method needing another answers
        # missing_scope, as Slack does. None grants everything.
        self.bot_scopes: set[str] | None = None
        # Channels the bot was never invited into (reading or posting there answers not_in_channel), and
        # channel IDs that do not exist in the workspace (channel_not_found).
        self.channels_without_bot: set[str] = set()
        self.missing_channels: set[str] = set()
        # The workspace's user groups: ID → {"handle": "mturk-approvers", "users": ["U…", …]}; a test edits it
        # (under ``lock``) and sends the app the event Slack would send.
        self.user_groups: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.calls: list[SlackCall] = []
        self.messages: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        # Each user's Home tab as the app last published it (views.publish), by user ID.
        self.home_views: dict[str, dict[str, Any]] = {}
        self.uploaded_files: dict[str, dict[str, Any]] = {}
        self.downloads: list[str] = []  # file IDs downloaded with the bot token
        self.hosted_files: dict[str, dict[str, Any]] = {}
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.random_faults: dict[int | str, float] = {}
        self.random_retry_after = 1
        # Web API method → seconds it takes to answer, as when Slack is slow under load.
        self.slow_methods: dict[str, float] = {}
        self.random = random.Random(seed)
        self.injected_faults: collections.Counter[str] = collections.Counter()
        # While True, Slack is down: every Web API method answers 503 with an empty body and applies nothing.
        # Scripted and random faults are neither used nor consumed meanwhile; response URLs, uploads and
        # downloads are unaffected.
        self.unavailable = False
        # Slack's trigger_id lives 3 seconds and is good for one view; only IDs from new_trigger_id() are checked.
        self.trigger_ttl = 3.0
        self._triggers: dict[str, float | None] = {}
        self._scripted: list[dict[str, Any]] = []
        self._sequence = 0
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            # A pushed view needs a fresh trigger_id just as an opened one does.
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.info": self._files_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
        }

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # ------------------------------------------------------------------ helpers for tests

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._find_message(channel, ts)
            return copy.deepcopy(found) if found else None

    def thread_replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(message)
                for message in self.messages
                if message["channel"] == channel and message["thread_ts"] == thread_ts and message["ts"] != thread_ts
            ]

    def dms_to(self, user_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(message) for message in self.messages if message["channel"] == f"D{user_id}"]

    def ephemerals_to(self, user_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(message) for message in self.ephemerals if message["user"] == user_id]

    def calls_to(self, method: str) -> list[SlackCall]:
        with self.lock:
            return [call for call in self.calls if call.method == method]

    def responses_for(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return [payload for response_key, payload in self.responses if response_key == key]

    def response_url(self, key: str) -> str:
        return f"{self.url}/respond/{quote(key, safe='')}"

    def new_trigger_id(self) -> str:
        """A trigger_id that, like Slack's, expires after ``trigger_ttl`` seconds and opens one view."""
        with self.lock:
            trigger_id = f"{self._next_sequence()}.{TEAM_ID}.fake{len(self._triggers)}"
            self._triggers[trigger_id] = time.monotonic()
        return trigger_id

    def host_file(
        self,
        file_id: str,
        name: str,
        content: bytes,
        filetype: str = "csv",
        *,
        url: str | None = None,
        redirect_to: str | None = None,
    ) -> dict[str, Any]:
        """Make a file downloadable as a Slack file; the answer is the file object a file_input would carry.

        `url` replaces the download address files.info gives (default: this fake's own); `redirect_to` makes
        the download answer a 302 to that address, as a file host sending the client elsewhere would.
        """
        mimetype = _FILETYPE_MIMETYPES.get(filetype) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        url = url or f"{self.url}/files-pri/{file_id}/{quote(name)}"
        file = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": "U0UPLOADER",
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": url,
            "url_private_download": f"{url}?download=1",
        }
        with self.lock:
            self.hosted_files[file_id] = {"file": file, "content": content, "redirect_to": redirect_to}
        return copy.deepcopy(file)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll ``predicate`` until it returns something truthy, for work the app finishes in the background."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = predicate()
            except Exception as error:
                # A predicate indexing a list that is still empty is just "not yet".
                last = error
            if last and not isinstance(last, Exception):
                return last
            if time.monotonic() >= deadline:
                with self.lock:
                    recent = [
                        f"{call.method}{' [' + call.injected + ']' if call.injected else ''}" for call in self.calls
                    ]
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {getattr(predicate, '__qualname__', predicate)}; "
                    f"last result {last!r}; Slack calls so far: {recent[-20:]}; "
                    f"fake server errors: {len(self.server_errors)}"
                )
            time.sleep(0.01)

    # ------------------------------------------------------------------ fault injection

    def fail_next(self, method: str, status: int = 429, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls to ``method`` with an HTTP error, without applying them.

        429 carries ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``; 5xx carries an HTML page, as
        Slack's edge does. ``method`` is a Web API method, "*" for any of them, or "upload", "respond" or
        "download" for the file upload URL, response URLs and private file URLs. Faults for one method are
        used in the order they were queued, whatever their kind.
        """
        with self.lock:
            self._scripted.append(
                {
                    "method": method,
                    "kind": "status",
                    "status": status,
                    "times": times,
                    "retry_after": retry_after,
                }
            )

    def error_next(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``method`` with ``{"ok": false, "error": error}`` on HTTP 200."""
        with self.lock:
            self._scripted.append({"method": method, "kind": "error", "error": error, "times": times})

    def drop_next(self, method: str, times: int = 1, *, channel: str | None = None) -> None:
        """Apply the next ``times`` calls to ``method`` (to ``channel`` only, if given), then close the connection
        without answering."""
        with self.lock:
            self._scripted.append({"method": method, "kind": "drop", "times": times, "channel": channel})

    def _take_fault(self, method: str, args: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The first scripted fault queued for ``method``, else a random one for API methods, else None."""
        is_api_method = "." in method
        with self.lock:
            for fault in self._scripted:
                if fault.get("channel") and fault["channel"] != (args or {}).get("channel"):
                    continue
                if fault["method"] == method or (fault["method"] == "*" and is_api_method):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self._scripted.remove(fault)
                    return fault
            if not is_api_method:
                return None
            # Sorted so a seed gives the same faults whatever order the dict was filled in.
            for kind, probability in sorted(self.random_faults.items(), key=lambda item: str(item[0])):
                if self.random.random() < probability:
                    if isinstance(kind, int):
                        return {"kind": "status", "status": kind, "retry_after": self.random_retry_after}
                    return {"kind": "drop"} if kind == "drop" else {"kind": "error", "error": kind}
        return None

    def _count(self, fault: dict[str, Any] | None) -> str | None:
        if fault is None:
            return None
        name = {"status": str(fault.get("status")), "drop": "drop"}.get(fault["kind"], f"error:{fault.get('error')}")
        with self.lock:
            self.injected_faults[name] += 1
        return name

    def _status_fault(self, fault: dict[str, Any]) -> HttpResponse:
        status = fault["status"]
        if status == 429:
            return json_response({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(fault["retry_after"])})
        page = f"<html><body><h1>{status}</h1><p>Slack is having trouble (fake).</p></body></html>"
        return text_response(page, status, "text/html")

    # ------------------------------------------------------------------ routing

    def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path.startswith("/api/"):
            return self._api(path.removeprefix("/api/"), request)
        if path.startswith("/upload/") and request.method == "POST":
            return self._other_endpoint("upload", lambda: self._receive_upload(path.removeprefix("/upload/"), request))
        if path.startswith("/respond/") and request.method == "POST":
            key = unquote(path.removeprefix("/respond/"))
            return self._other_endpoint("respond", lambda: self._receive_response(key, request))
        if path.startswith("/files-pri/") and request.method == "GET":
            return self._other_endpoint("download", lambda: self._download(path.removeprefix("/files-pri/"), request))
        if path == "/signin":
            return text_response("<html><body>Sign in to Lab (fake)</body></html>", 200, "text/html")
        return text_response("not found", 404)

    def _api(self, method: str, request: HttpRequest) -> HttpResponse:
        if delay := self.slow_methods.get(method):
            time.sleep(delay)
        fault: dict[str, Any] | None = None
        scopes: str | None = None
        args: dict[str, Any] = dict(request.query)
        if self.unavailable:
            with contextlib.suppress(_SlackError):
                args.update(_parse_args(request))
            with self.lock:
                self.injected_faults["unavailable"] += 1
                self.calls.append(SlackCall(method, args, dict(request.headers), "unavailable"))
            return HttpResponse(503, b"", "text/plain")
        try:
            args.update(_parse_args(request))
            scopes = self._check_token(request, args, method)
            self._check_scope(method, args)
            self._check_channel(method, args)
            fault = self._take_fault(method, args)
            if fault is not None and fault["kind"] == "status":
                response = self._status_fault(fault)
            else:
                if fault is not None and fault["kind"] == "error":
                    raise _SlackError(fault["error"])
                run = self._methods.get(method)
                if run is None:
                    raise _SlackError("unknown_method")
                response = json_response({"ok": True, **run(args)})
        except _SlackError as error:
            body: dict[str, Any] = {"ok": False, "error": error.error}
            if error.messages:
                body["response_metadata"] = {"messages": error.messages}
            response = json_response(body)
        if scopes is not None and (fault is None or fault["kind"] == "error"):
            # Slack tells every caller the scopes its token holds; a self-check reads them from here.
            response.headers["x-oauth-scopes"] = scopes
        if fault is not None and fault["kind"] == "drop":
            response = HttpResponse(drop=True)
        injected = self._count(fault)
        with self.lock:
            self.calls.append(SlackCall(method, args, dict(request.headers), injected))
        return response

    def _other_endpoint(self, label: str, serve: Callable[[], HttpResponse]) -> HttpResponse:
        """Serve an upload, response URL or download, with the faults scripted for its label."""
        fault = self._take_fault(label)
        self._count(fault)
        if fault is not None and fault["kind"] == "status":
            return self._status_fault(fault)
        if fault is not None and fault["kind"] == "error":
            return text_response(fault["error"], 400)
        response = serve()
        return HttpResponse(drop=True) if fault is not None and fault["kind"] == "drop" else response

    def _check_token(self, request: HttpRequest, args: dict[str, Any], method: str) -> str:
        """Accept the call's token or raise as Slack does; the token's scopes, as its x-oauth-scopes header."""
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else None
        token = token or args.get("token")
        if not token:
            raise _SlackError("not_authed")
        if method == "apps.connections.open":  # the one method that takes the app-level token, and only it
            if token != self.app_token:
                raise _SlackError("not_allowed_token_type" if token == self.bot_token else "invalid_auth")
            return "connections:write"
        if token != self.bot_token:
            raise _SlackError("not_allowed_token_type" if token == self.app_token else "invalid_auth")
        return ",".join(sorted(ALL_BOT_SCOPES if self.bot_scopes is None else self.bot_scopes))

    def _check_scope(self, method: str, args: dict[str, Any]) -> None:
        if self.bot_scopes is None:
            return
        needed = _scope_needed(method, args)
        if needed and needed not in self.bot_scopes:
            raise _SlackError("missing_scope")

    def _check_channel(self, method: str, args: dict[str, Any]) -> None:
        if method not in _IN_CHANNEL_METHODS:
            return
        channel = str(args.get("channel", ""))
        with self.lock:
            if channel in self.missing_channels:
                raise _SlackError("channel_not_found")
            if channel in self.channels_without_bot:
                raise _SlackError("not_in_channel")

    # ------------------------------------------------------------------ Web API methods

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_mode is None:
            raise _SlackError("socket_mode_not_enabled")
        return {"url": self.socket_mode.url}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Lab",
            "user": "grantbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _conversation_id(_required(args, "channel", "channel_not_found"))
        text, blocks, attachments = args.get("text"), args.get("blocks"), args.get("attachments")
        if not text and not blocks and not attachments:
            raise _SlackError("no_text")
        _check_message_content(text, blocks)
        metadata = _metadata_argument(args.get("metadata"))
        with self.lock:
            message = {
                "channel": channel,
                "ts": self._next_ts(),
                "thread_ts": args.get("thread_ts") or None,
                "text": text or "",
                "blocks": blocks,
                "attachments": attachments,
                "metadata": metadata,
                "files": [],
                "history": [],
            }
            self.messages.append(message)
            return {"channel": channel, "ts": message["ts"], "message": _wire_message(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        ts = _required(args, "ts", "message_not_found")
        text, blocks, attachments = args.get("text"), args.get("blocks"), args.get("attachments")
        if text is None and blocks is None and attachments is None:
            raise _SlackError("no_text")
        _check_message_content(text, blocks)
        with self.lock:
            message = self._find_message(channel, ts)
            if message is None:
                raise _SlackError("message_not_found")
            message["history"].append({key: message[key] for key in ("text", "blocks", "attachments")})
            # Slack keeps the blocks and attachments a caller leaves out; an empty list removes them.
            if text is not None:
                message["text"] = text
            if blocks is not None:
                message["blocks"] = blocks or None
            if attachments is not None:
                message["attachments"] = attachments or None
            return {"channel": channel, "ts": ts, "text": message["text"], "message": _wire_message(message)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _conversation_id(_required(args, "channel", "channel_not_found"))
        user = _required(args, "user", "user_not_found")
        text, blocks = args.get("text"), args.get("blocks")
        if not text and not blocks and not args.get("attachments"):
            raise _SlackError("no_text")
        _check_message_content(text, blocks)
        with self.lock:
            ts = self._next_ts()
            self.ephemerals.append(
                {
                    "channel": channel,
                    "user": user,
                    "ts": ts,
                    "thread_ts": args.get("thread_ts") or None,
                    "text": text or "",
                    "blocks": blocks,
                }
            )
        return {"message_ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _required(args, "channel", "channel_not_found")
        ts = _required(args, "message_ts", "message_not_found")
        with self.lock:
            message = self._find_message(channel, ts)
            if message is None:
                raise _SlackError("message_not_found")
            permalink = f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"
            if message["thread_ts"] and message["thread_ts"] != ts:
                permalink += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": permalink}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._use_trigger(args.get("trigger_id"))
        return {"view": self._store_view(_view_argument(args), root_view_id=None, previous_view_id=None)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        """A user's Home tab: one view per user, replaced on each publish (its ID stays), as Slack keeps it."""
        user_id = _required(args, "user_id", "invalid_arguments")
        view = _view_argument(args)
        if view.get("type") != "home":
            raise _SlackError("invalid_arguments", ["[ERROR] must be home [json-pointer:/view/type]"])
        with self.lock:
            current = self.home_views.get(user_id)
            if current and args.get("hash") and args["hash"] != current["hash"]:
                raise _SlackError("hash_conflict")
            stored = self._store_view(view, None, None, current["id"] if current else None)
            self.home_views[user_id] = stored
        return {"view": stored}

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab the app last published for `user_id`, as Slack reports it in a click's payload."""
        with self.lock:
            view = self.home_views.get(user_id)
            return copy.deepcopy(view) if view else None

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _view_argument(args)
        with self.lock:
            view_id = args.get("view_id") or next(
                (vid for vid, stored in self.views.items() if args.get("external_id") == stored["external_id"]),
                None,
            )
            if not view_id or view_id not in self.views:
                raise _SlackError("not_found")
            current = self.views[view_id]
            if args.get("hash") and args["hash"] != current["hash"]:
                raise _SlackError("hash_conflict")
            history = [
                *current["history"],
                {key: value for key, value in current.items() if key != "history"},
            ]
            stored = self._store_view(view, current["root_view_id"], current["previous_view_id"], view_id)
            self.views[view_id]["history"] = history
        return {"view": stored}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"channel": {"id": args["channel"]}, "no_op": True, "already_open": True}
        users = [user.strip() for user in str(args.get("users", "")).split(",") if user.strip()]
        if not users:
            raise _SlackError("users_list_not_supplied")
        channel_id = f"D{users[0]}" if len(users) == 1 else f"G{''.join(sorted(users))}"
        return {"channel": {"id": channel_id}, "no_op": False, "already_open": False}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first, from ``oldest`` on; one page of at most ``limit``."""
        channel = _required(args, "channel", "channel_not_found")
        oldest = float(args.get("oldest") or 0)
        limit = int(args.get("limit") or 100)
        with_metadata = _flag(args.get("include_all_metadata"))
        with self.lock:
            found = [
                m
                for m in self.messages
                if m["channel"] == channel
                and (not m["thread_ts"] or m["thread_ts"] == m["ts"])
                and float(m["ts"]) >= oldest
            ]
            found.sort(key=lambda m: float(m["ts"]), reverse=True)
            page = [_wire_message(m, with_metadata) for m in found[:limit]]
        return {"ok": True, "messages": page, "has_more": len(found) > limit, "response_metadata": {"next_cursor": ""}}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The whole thread in one page, parent first; ``limit`` and ``cursor`` are accepted and ignored."""
        channel = _required(args, "channel", "channel_not_found")
        ts = _required(args, "ts", "thread_not_found")
        with self.lock:
            found = self._find_message(channel, ts)
            if found is None:
                raise _SlackError("thread_not_found")
            # The ts of a reply names its whole thread, as the parent's does.
            parent_ts = found["thread_ts"] or ts
            parent = self._find_message(channel, parent_ts)
            replies = sorted(
                (
                    m
                    for m in self.messages
                    if m["channel"] == channel and m["thread_ts"] == parent_ts and m["ts"] != parent_ts
                ),
                key=lambda m: float(m["ts"]),
            )
            with_metadata = _flag(args.get("include_all_metadata"))
            messages = []
            if parent is not None:
                wire = _wire_message(parent, with_metadata)
                if replies:
                    wire.update(
                        thread_ts=parent_ts,
                        reply_count=len(replies),
                        reply_users_count=1,
                        latest_reply=replies[-1]["ts"],
                        reply_users=[BOT_USER_ID],
                    )
                messages.append(wire)
            for reply in replies:
                messages.append({**_wire_message(reply, with_metadata), "parent_user_id": BOT_USER_ID})
        return {"messages": messages, "has_more": False, "response_metadata": {"next_cursor": ""}}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            groups = [
                {"id": group_id, "handle": group["handle"], "name": group["handle"], "user_count": len(group["users"])}
                for group_id, group in self.user_groups.items()
            ]
        return {"usergroups": groups}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group_id = _required(args, "usergroup", "invalid_arguments")
        with self.lock:
            group = self.user_groups.get(group_id)
            if group is None:
                raise _SlackError("no_such_subteam")
            return {"users": list(group["users"])}

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = _required(args, "filename", "invalid_arguments")
        length = str(_required(args, "length", "invalid_arguments"))
        if not length.isdigit():
            raise _SlackError("invalid_arguments")
        with self.lock:
            file_id = f"F{self._next_sequence():010d}"
            self.uploaded_files[file_id] = {
                "bytes": None,
                "filename": filename,
                "title": None,
                "length": int(length),
                "channel": None,
                "thread_ts": None,
                "initial_comment": None,
                "completed": False,
            }
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        channel = args.get("channel_id") or (str(args.get("channels") or "").split(",")[0] or None)
        thread_ts = args.get("thread_ts") or None
        if thread_ts and not channel:
            raise _SlackError("invalid_arguments")
        with self.lock:
            for item in files:
                upload = self.uploaded_files.get(item.get("id", "")) if isinstance(item, dict) else None
                if upload is None or upload["bytes"] is None or upload["completed"]:
                    raise _SlackError("file_not_found")
            shared = []
            for item in files:
                upload = self.uploaded_files[item["id"]]
                upload.update(
                    title=item.get("title") or upload["filename"],
                    channel=channel,
                    thread_ts=thread_ts,
                    initial_comment=args.get("initial_comment"),
                    completed=True,
                )
                shared.append({"id": item["id"], "title": upload["title"]})
            if channel:
                self.messages.append(
                    {
                        "channel": channel,
                        "ts": self._next_ts(),
                        "thread_ts": thread_ts,
                        "text": args.get("initial_comment") or "",
                        "blocks": None,
                        "attachments": None,
                        "metadata": None,
                        "files": [self._uploaded_file_object(item["id"]) for item in files],
                        "history": [],
                    }
                )
        # Slack answers with id and title only; the share itself completes asynchronously.
        return {"files": shared}

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = _required(args, "file", "file_not_found")
        with self.lock:
            if file_id in self.hosted_files:
                file = copy.deepcopy(self.hosted_files[file_id]["file"])
            elif file_id in self.uploaded_files and self.uploaded_files[file_id]["completed"]:
                file = self._uploaded_file_object(file_id)
            else:
                raise _SlackError("file_not_found")
        return {"file": file, "comments": [], "response_metadata": {"next_cursor": ""}}

    # ------------------------------------------------------------------ non-API endpoints

    def _receive_upload(self, file_id: str, request: HttpRequest) -> HttpResponse:
        content = request.body
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            parts = _parse_multipart(request)
            content = next((value for value in parts.values() if isinstance(value, bytes)), b"")
        with self.lock:
            upload = self.uploaded_files.get(file_id)
            if upload is None:
                return text_response("upload URL not found", 404)
            upload["bytes"] = content
        return text_response(f"OK - {len(content)}")

    def _receive_response(self, key: str, request: HttpRequest) -> HttpResponse:
        try:
            payload = json.loads(request.body)
        except ValueError:
            return text_response("invalid_payload", 400)
        with self.lock:
            self.responses.append((key, payload))
        return text_response("ok")

    def _download(self, rest: str, request: HttpRequest) -> HttpResponse:
        authorization = request.headers.get("authorization")
        if not authorization:
            # Slack sends browsers without a session to its sign-in page, which answers 200 with HTML.
            response = text_response("", 302, "text/html")
            response.headers["Location"] = f"{self.url}/signin?redir={quote(request.path)}"
            return response
        if authorization != f"Bearer {self.bot_token}":
            return text_response("invalid_auth", 403)
        file_id, _, name = rest.partition("/")
        with self.lock:
            self.downloads.append(file_id)
            hosted = self.hosted_files.get(file_id)
            if hosted is not None and quote(hosted["file"]["name"]) == name:
                if hosted["redirect_to"]:
                    return HttpResponse(302, b"", "text/plain", {"Location": hosted["redirect_to"]})
                return HttpResponse(200, hosted["content"], hosted["file"]["mimetype"])
            upload = self.uploaded_files.get(file_id)
            if upload is not None and upload["completed"] and quote(upload["filename"]) == name:
                return HttpResponse(200, upload["bytes"], "application/octet-stream")
        return text_response("file not found", 404)

    # ------------------------------------------------------------------ internals (call with lock held)

    def _next_sequence(self) -> int:
        with self.lock:
            self._sequence += 1
            return self._sequence

    def _next_ts(self) -> str:
        """Like Slack's: the current time in microseconds, unique and increasing."""
        with self.lock:
            self._last_ts_micros = max(int(time.time() * 1_000_000), getattr(self, "_last_ts_micros", 0) + 1)
            return f"{self._last_ts_micros // 1_000_000}.{self._last_ts_micros % 1_000_000:06d}"

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["channel"] == channel and m["ts"] == ts), None)

    def _use_trigger(self, trigger_id: Any) -> None:
        if not trigger_id:
            raise _SlackError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        with self.lock:
            if trigger_id not in self._triggers:
                return
            issued_at = self._triggers[trigger_id]
            if issued_at is None:
                raise _SlackError("trigger_exchanged")
            if time.monotonic() - issued_at > self.trigger_ttl:
                raise _SlackError("expired_trigger_id")
            self._triggers[trigger_id] = None

    def _store_view(
        self,
        view: dict[str, Any],
        root_view_id: str | None,
        previous_view_id: str | None,
        view_id: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            view_id = view_id or f"V{self._next_sequence():010d}"
            stored = {
                "id": view_id,
                "team_id": TEAM_ID,
                "type": view.get("type", "modal"),
                "title": view.get("title"),
                "submit": view.get("submit"),
                "close": view.get("close"),
                "blocks": view.get("blocks", []),
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "external_id": view.get("external_id", ""),
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{self._next_sequence():08d}",
                "clear_on_close": bool(view.get("clear_on_close", False)),
                "notify_on_close": bool(view.get("notify_on_close", False)),
                "root_view_id": root_view_id or view_id,
                "previous_view_id": previous_view_id,
                "app_id": APP_ID,
                "app_installed_team_id": TEAM_ID,
                "bot_id": BOT_ID,
                "history": self.views.get(view_id, {}).get("history", []),
            }
            self.views[view_id] = stored
            return {key: copy.deepcopy(value) for key, value in stored.items() if key != "history"}

    def _uploaded_file_object(self, file_id: str) -> dict[str, Any]:
        upload = self.uploaded_files[file_id]
        url = f"{self.url}/files-pri/{file_id}/{quote(upload['filename'])}"
        return {
            "id": file_id,
            "name": upload["filename"],
            "title": upload["title"],
            "mimetype": mimetypes.guess_type(upload["filename"])[0] or "application/octet-stream",
            "size": len(upload["bytes"] or b""),
            "user": BOT_USER_ID,
            "url_private": url,
            "url_private_download": f"{url}?download=1",
            "channels": [upload["channel"]] if upload["channel"] else [],
        }


# ---------------------------------------------------------------------- argument parsing and checks


def _parse_args(request: HttpRequest) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if not request.body:
        return {}
    if content_type.startswith("application/json"):
        try:
            parsed = json.loads(request.body)
        except ValueError:
            raise _SlackError("invalid_json") from None
        if not isinstance(parsed, dict):
            raise _SlackError("invalid_json")
        return parsed
    if content_type.startswith("multipart/form-data"):
        fields = _parse_multipart(request)
        return {key: value if isinstance(value, bytes) else _decode_field(key, value) for key, value in fields.items()}
    pairs = parse_qsl(request.body.decode(), keep_blank_values=True)
    return {key: _decode_field(key, value) for key, value in pairs}


def _decode_field(key: str, value: str) -> Any:
    # slack_sdk sends blocks, view, attachments and files as JSON strings inside form bodies.
    if key in FREE_TEXT_FIELDS or value[:1] not in ("[", "{"):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, list | dict) else value


def _parse_multipart(request: HttpRequest) -> dict[str, str | bytes]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, str | bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if not isinstance(name, str):
            continue
        fields[name] = payload if part.get_filename() else payload.decode()
    return fields


def _required(args: dict[str, Any], key: str, error: str) -> Any:
    value = args.get(key)
    if value in (None, ""):
        raise _SlackError(error)
    return value


_HISTORY_SCOPE = {"C": "channels:history", "G": "groups:history", "D": "im:history"}
_METHOD_SCOPE = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.open": "im:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.info": "files:read",
    "usergroups.list": "usergroups:read",
    "usergroups.users.list": "usergroups:read",
}


# Every scope the fake knows of: what the token holds when bot_scopes is None.
ALL_BOT_SCOPES = frozenset({"commands", *_HISTORY_SCOPE.values(), *_METHOD_SCOPE.values()})
# Methods Slack answers with not_in_channel (or channel_not_found) when the bot is not in the channel.
_IN_CHANNEL_METHODS = frozenset({"chat.postMessage", "chat.update", "conversations.history", "conversations.replies"})


def _scope_needed(method: str, args: dict[str, Any]) -> str | None:
    """The bot scope Slack requires for this call (auth.test, views.* and chat.getPermalink need none)."""
    if method in ("conversations.history", "conversations.replies"):
        return _HISTORY_SCOPE.get(str(args.get("channel", ""))[:1])
    return _METHOD_SCOPE.get(method)


def _conversation_id(channel: str) -> str:
    # Posting to a user ID lands in the bot's DM with that user, whose ID Slack returns.
    return f"D{channel}" if channel[:1] in ("U", "W") else channel


def _check_message_content(text: Any, blocks: Any) -> None:
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        raise _SlackError("msg_too_long")
    if blocks is not None:
        _check_blocks(blocks, MAX_MESSAGE_BLOCKS, "invalid_blocks", "/blocks")


def _check_blocks(blocks: Any, limit: int, error: str, pointer: str) -> None:
    if not isinstance(blocks, list):
        raise _SlackError(error, [f"[ERROR] must be an array [json-pointer:{pointer}]"])
    if len(blocks) > limit:
        raise _SlackError(error, [f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]"])
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _SlackError(error, [f"[ERROR] missing required field: type [json-pointer:{pointer}/{index}]"])
        problem = _block_problem(block, f"{pointer}/{index}")
        if problem:
            raise _SlackError(error, [problem])


def _block_problem(block: dict[str, Any], pointer: str) -> str | None:
    """The first of Slack's published Block Kit limits that `block` breaks, worded as Slack words it."""
    limits: list[tuple[Any, int, str]] = []  # (text object, its maximum length, where)
    kind = block["type"]
    if kind == "header":
        limits.append((block.get("text"), MAX_HEADER_TEXT, "/text"))
    elif kind == "section":
        fields = block.get("fields") or []
        if len(fields) > MAX_SECTION_FIELDS:
            return f"[ERROR] no more than {MAX_SECTION_FIELDS} items allowed [json-pointer:{pointer}/fields]"
        limits += [(field, MAX_SECTION_FIELD, f"/fields/{i}") for i, field in enumerate(fields)]
    elif kind == "context":
        if len(block.get("elements") or []) > MAX_CONTEXT_ELEMENTS:
            return f"[ERROR] no more than {MAX_CONTEXT_ELEMENTS} items allowed [json-pointer:{pointer}/elements]"
    elif kind == "actions":
        for i, element in enumerate(block.get("elements") or []):
            if not isinstance(element, dict):
                continue
            limits.append((element.get("text"), MAX_BUTTON_TEXT, f"/elements/{i}/text"))
            confirm = element.get("confirm")
            if isinstance(confirm, dict):
                for key, most in MAX_CONFIRM_TEXTS.items():
                    limits.append((confirm.get(key), most, f"/elements/{i}/confirm/{key}"))
    for text, most, where in limits:
        if isinstance(text, dict) and len(str(text.get("text", ""))) > most:
            return f"[ERROR] must be less than {most + 1} characters [json-pointer:{pointer}{where}/text]"
    for where, text in _text_objects(block, pointer):
        length = len(str(text.get("text") or ""))
        if length == 0:
            return f"[ERROR] must be more than 0 characters [json-pointer:{where}/text]"
        if length > MAX_TEXT_OBJECT:
            return f"[ERROR] must be less than {MAX_TEXT_OBJECT + 1} characters [json-pointer:{where}/text]"
    return None


def _text_objects(node: Any, pointer: str) -> list[tuple[str, dict[str, Any]]]:
    """Every text object (plain_text or mrkdwn) inside `node`, with its JSON pointer."""
    if isinstance(node, list):
        return [found for i, item in enumerate(node) for found in _text_objects(item, f"{pointer}/{i}")]
    if not isinstance(node, dict):
        return []
    own = [(pointer, node)] if node.get("type") in ("plain_text", "mrkdwn") and "text" in node else []
    return own + [found for key, value in node.items() for found in _text_objects(value, f"{pointer}/{key}")]


def _view_argument(args: dict[str, Any]) -> dict[str, Any]:
    view = args.get("view")
    if not isinstance(view, dict):
        raise _SlackError("invalid_arguments", ["[ERROR] missing required field: view"])
    _check_blocks(view.get("blocks", []), MAX_MODAL_BLOCKS, "invalid_arguments", "/view/blocks")
    for field in ("title", "submit", "close"):
        label = view.get(field)
        if isinstance(label, dict) and len(str(label.get("text", ""))) > 24:
            raise _SlackError(
                "invalid_arguments",
                [f"[ERROR] must be less than 25 characters [json-pointer:/view/{field}/text]"],
            )
    if view.get("type") == "modal" and not view.get("title"):
        raise _SlackError("invalid_arguments", ["[ERROR] missing required field: title [json-pointer:/view]"])
    if len(str(view.get("private_metadata", ""))) > 3000:
        raise _SlackError(
            "invalid_arguments",
            ["[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]"],
        )
    return view


def _flag(value: Any) -> bool:
    # slack_sdk sends booleans in query strings and forms as "1" or "0"; JSON bodies carry real booleans.
    return value is True or str(value).lower() in ("1", "true")


def _metadata_argument(metadata: Any) -> dict[str, Any] | None:
    """chat.postMessage's ``metadata``: an object in JSON bodies, a JSON string in forms."""
    if metadata in (None, ""):
        return None
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            raise _SlackError("invalid_metadata_format") from None
    if not isinstance(metadata, dict):
        raise _SlackError("invalid_metadata_format")
    if not isinstance(metadata.get("event_type"), str) or not isinstance(metadata.get("event_payload"), dict):
        raise _SlackError("invalid_metadata_schema")
    return metadata


def _wire_message(message: dict[str, Any], with_metadata: bool = True) -> dict[str, Any]:
    """The message as Slack's API returns it, without the fake's bookkeeping.

    Reading methods leave ``metadata`` out unless called with include_all_metadata.
    """
    wire = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": message["text"],
        "ts": message["ts"],
    }
    for key in ("blocks", "attachments", "thread_ts", "files", *(("metadata",) if with_metadata else ())):
        if message.get(key):
            wire[key] = copy.deepcopy(message[key])
    if message["history"]:
        wire["edited"] = {"user": BOT_USER_ID, "ts": message["ts"]}
    return wire
