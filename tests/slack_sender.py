"""Sends requests to the app exactly as Slack does: form-encoded bodies signed with the signing secret."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

TEAM_ID = "T0001"
_counter = itertools.count(1)


@dataclass
class SlackResponse:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSender:
    def __init__(self, events_url: str, signing_secret: str, response_base: str) -> None:
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.response_base = response_base  # fake Slack's respond/ prefix, for response_url

    def post(
        self,
        form: dict[str, str],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        sign: bool = True,
        retry_num: int | None = None,
    ) -> SlackResponse:
        return self.send(*self.prepare(form, timestamp=timestamp, secret=secret, sign=sign, retry_num=retry_num))

    def prepare(
        self,
        form: dict[str, str],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        sign: bool = True,
        retry_num: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one delivery, as Slack would send them (to replay byte for byte)."""
        body = urllib.parse.urlencode(form).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sign:
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = signature(secret or self.signing_secret, ts, body)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return body, headers

    def send(self, body: bytes, headers: dict[str, str]) -> SlackResponse:
        """POST exactly these bytes and headers (header values go out as latin-1, as http.client sends them)."""
        request = urllib.request.Request(self.events_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return SlackResponse(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return SlackResponse(error.code, error.read().decode())

    def event(self, event: dict[str, Any], **options: Any) -> SlackResponse:
        """An Events API delivery (`event_callback`) of `event`, signed like every other request."""
        return self.post_json(self.event_payload(event), **options)

    def event_payload(self, event: dict[str, Any]) -> dict[str, Any]:
        """The Events API body around `event`: posted over HTTP, or an events_api envelope's payload."""
        return {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": f"Ev{next(_counter):08d}",
            "event_time": int(time.time()),
            "event": event,
        }

    def post_json(self, payload: dict[str, Any], *, secret: str | None = None) -> SlackResponse:
        """A JSON body (the Events API's), signed."""
        body = json.dumps(payload).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(secret or self.signing_secret, ts, body),
        }
        return self.send(body, headers)

    def command(self, user_id: str, text: str, *, response_key: str | None = None, **options: Any) -> SlackResponse:
        return self.post(self.command_form(user_id, text, response_key=response_key), **options)

    def command_form(self, user_id: str, text: str, *, response_key: str | None = None) -> dict[str, str]:
        """The fields of a /grant-qual invocation: a form over HTTP, an envelope's payload in Socket Mode."""
        key = response_key or f"cmd-{next(_counter)}"
        return {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "lab",
            "channel_id": "C0WORK",
            "channel_name": "work",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": "/grant-qual",
            "text": text,
            "api_app_id": "A0APP",
            "response_url": f"{self.response_base}{key}",
            "trigger_id": f"trigger-{next(_counter)}",
        }

    def click(
        self,
        user_id: str,
        action_id: str,
        value: str,
        *,
        message_ts: str = "1.0",
        channel_id: str = "C0APPROVALS",
        message: dict[str, Any] | None = None,
        view_id: str | None = None,
        view: dict[str, Any] | None = None,
        response_key: str | None = None,
        trigger_id: str | None = None,
        **options: Any,
    ) -> SlackResponse:
        payload = self.click_payload(
            user_id,
            action_id,
            value,
            message_ts=message_ts,
            channel_id=channel_id,
            message=message,
            view_id=view_id,
            view=view,
            response_key=response_key,
            trigger_id=trigger_id,
        )
        return self.post({"payload": json.dumps(payload)}, **options)

    def click_payload(
        self,
        user_id: str,
        action_id: str,
        value: str,
        *,
        message_ts: str = "1.0",
        channel_id: str = "C0APPROVALS",
        message: dict[str, Any] | None = None,
        view_id: str | None = None,
        view: dict[str, Any] | None = None,
        response_key: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, Any]:
        """A button click's block_actions payload: a form field over HTTP, an envelope's payload in Socket Mode.

        Slack says where the button was: `container` (and `channel`, `message`) for a button in a message,
        given by its ts or as the message itself; `container` and `view` for a button in a view, given by its ID
        (a Home tab of this app) or as the view itself (e.g. the fake's published Home, or a modal).
        """
        key = response_key or f"click-{next(_counter)}"
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "lab"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0APP",
            "token": "deprecated-verification-token",
            "trigger_id": trigger_id or f"trigger-{next(_counter)}",
            "response_url": f"{self.response_base}{key}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": f"decision-{value}",
                    "text": {"type": "plain_text", "text": action_id},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        if view is not None:
            view_id = str(view["id"])
        if view_id is not None:
            payload["container"] = {"type": "view", "view_id": view_id}
            payload["view"] = view or {
                "id": view_id,
                "team_id": TEAM_ID,
                "type": "home",
                "blocks": [],
                "app_id": "A0APP",
            }
            return payload
        clicked = _clicked_message(message, message_ts)
        payload["container"] = {
            "type": "message",
            "message_ts": clicked["ts"],
            "channel_id": channel_id,
            "is_ephemeral": False,
            **({"thread_ts": clicked["thread_ts"]} if clicked.get("thread_ts") else {}),
        }
        # Slack names a DM's channel "directmessage"; the channel's own name otherwise.
        payload["channel"] = {"id": channel_id, "name": "directmessage" if channel_id.startswith("D") else "approvals"}
        payload["message"] = clicked
        return payload

    def submit_view(
        self,
        user_id: str,
        values: dict[str, Any],
        *,
        private_metadata: str = "{}",
        callback_id: str = "grant_request_modal",
        view_id: str | None = None,
        **options: Any,
    ) -> SlackResponse:
        payload = self.view_submission_payload(
            user_id, values, private_metadata=private_metadata, callback_id=callback_id, view_id=view_id
        )
        return self.post({"payload": json.dumps(payload)}, **options)

    def view_submission_payload(
        self,
        user_id: str,
        values: dict[str, Any],
        *,
        private_metadata: str = "{}",
        callback_id: str = "grant_request_modal",
        view_id: str | None = None,
    ) -> dict[str, Any]:
        """A view_submission payload. Every submission is a new interaction with its own trigger_id; a modal
        resubmitted after inline errors keeps its view ID (pass `view_id`) and gets a new hash."""
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "lab"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0APP",
            "token": "deprecated-verification-token",
            "trigger_id": f"trigger-{next(_counter)}",
            "view": {
                "id": view_id or f"V{next(_counter):08d}",
                "team_id": TEAM_ID,
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "state": {"values": values},
                "hash": f"{next(_counter)}.abc",
            },
            "response_urls": [],
        }

    def shortcut(self, user_id: str, callback_id: str = "grant_qual_global", **options: Any) -> SlackResponse:
        """A global shortcut, chosen from the shortcuts menu or the search bar: no channel, no response_url."""
        return self.post({"payload": json.dumps(self.shortcut_payload(user_id, callback_id))}, **options)

    def shortcut_payload(self, user_id: str, callback_id: str = "grant_qual_global") -> dict[str, Any]:
        return {
            "type": "shortcut",
            "token": "deprecated-verification-token",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": TEAM_ID, "domain": "lab"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": f"trigger-{next(_counter)}",
        }

    def message_shortcut(
        self,
        user_id: str,
        message: dict[str, Any],
        *,
        callback_id: str = "grant_qual_message",
        channel_id: str = "C0WORK",
        trigger_id: str | None = None,
        response_key: str | None = None,
        **options: Any,
    ) -> SlackResponse:
        """A message shortcut ("message_action") chosen on `message` (its text, ts, files as Slack shows them)."""
        key = response_key or f"shortcut-{next(_counter)}"
        payload = {
            "type": "message_action",
            "token": "deprecated-verification-token",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": TEAM_ID, "domain": "lab"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID, "name": user_id.lower()},
            "channel": {"id": channel_id, "name": "work"},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": trigger_id or f"trigger-{next(_counter)}",
            "response_url": f"{self.response_base}{key}",
            "message_ts": message["ts"],
            "message": message,
        }
        return self.post({"payload": json.dumps(payload)}, **options)

    def suggest(self, user_id: str, value: str, **options: Any) -> SlackResponse:
        """Typing into the modal's type picker: Slack asks the app for the options to show."""
        return self.post({"payload": json.dumps(self.block_suggestion_payload(user_id, value))}, **options)

    def block_suggestion_payload(
        self,
        user_id: str,
        value: str,
        *,
        action_id: str = "pick_qualification_type",
        block_id: str = "qualification_type",
        view_id: str | None = None,
    ) -> dict[str, Any]:
        """A block_suggestion payload, as Slack sends one for an external_select in a modal (no trigger_id)."""
        return {
            "type": "block_suggestion",
            "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID},
            "container": {"type": "view", "view_id": view_id or f"V{next(_counter):08d}"},
            "api_app_id": "A0APP",
            "token": "deprecated-verification-token",
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "team": {"id": TEAM_ID, "domain": "lab"},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": {
                "id": view_id or f"V{next(_counter):08d}",
                "team_id": TEAM_ID,
                "type": "modal",
                "callback_id": "grant_request_modal",
                "private_metadata": "{}",
                "state": {"values": {}},
                "hash": f"{next(_counter)}.abc",
            },
        }


def _clicked_message(message: dict[str, Any] | None, message_ts: str) -> dict[str, Any]:
    """The `message` of a click payload: the message as Slack shows it to the app (its text, blocks, thread)."""
    if message is None:
        return {"type": "message", "ts": message_ts, "text": "request"}
    shown = {"type": "message", "ts": message["ts"], "text": message.get("text") or ""}
    for field in ("user", "bot_id", "app_id", "blocks", "thread_ts"):
        if message.get(field):
            shown[field] = message[field]
    return shown


def modal_values(
    qualification: str = "",
    workers: str = "",
    value: str = "",
    notify: bool = True,
    reason: str = "",
    files: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """view.state.values as Slack sends them for the grant modal."""

    def text(v: str) -> dict[str, Any]:
        return {"value": {"type": "plain_text_input", "value": v or None}}

    selected = [{"text": {"type": "plain_text", "text": "Email"}, "value": "notify"}] if notify else []
    return {
        "qualification_type": picked_type(qualification),
        "workers": text(workers),
        "value": text(value),
        "notify": {"value": {"type": "checkboxes", "selected_options": selected}},
        "reason": text(reason),
        "workers_file": {"value": {"type": "file_input", "files": files or []}},
    }


def picked_type(type_id: str, shown: str | None = None) -> dict[str, Any]:
    """The type picker's state as Slack sends it: the chosen option (its value the type ID), or none."""
    option = {"text": {"type": "plain_text", "text": shown or type_id}, "value": type_id} if type_id else None
    return {"pick_qualification_type": {"type": "external_select", "selected_option": option}}


def message_text(message: dict[str, Any] | None) -> str:
    """All the text a person would read in a message or response: its text and every block's text."""
    if not message:
        return ""
    parts: list[str] = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)
