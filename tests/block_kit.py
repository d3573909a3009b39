"""Checks that what the app sends to Slack is valid Block Kit, and helpers to read what people would see.

Every ``blocks`` list and view is parsed with slack_sdk's Block Kit models and validated with their own
validators (``validate_json`` on the block, and ``to_dict``, which validates each nested element, text
object and confirm dialog). On top of that come limits slack_sdk does not check but Slack enforces: at most
50 blocks in a message and 100 in a modal, no empty text object and none over 3,000 characters (a context
element's text included), section text up to 3,000 characters, at most 10 section fields of up to 2,000
each, and a message's top-level ``text`` within the 40,000 characters past which Slack truncates it.

Use ``assert_valid_block_kit(fake_slack)`` at the end of a test, or the ``valid_block_kit`` fixture (import
it into a test module and list it in ``pytest.mark.usefixtures``) to check every call of a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.fakes import FakeSlack

MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
SECTION_TEXT_LIMIT = 3000
SECTION_FIELD_LIMIT = 2000
SECTION_FIELDS = 10
TEXT_OBJECT_LIMIT = 3000
MESSAGE_TEXT_LIMIT = 40_000
MESSAGE_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral")
VIEW_METHODS = ("views.open", "views.update", "views.push")
TEXT_TYPES = ("plain_text", "mrkdwn")


@dataclass(frozen=True)
class Sent:
    """One message or view the app sent: where it went (method or response URL key) and its payload."""

    where: str
    kind: str  # "message" or "view"
    payload: dict[str, Any]


def sent_to_slack(fake_slack: FakeSlack) -> list[Sent]:
    """Every message and view the app sent: Web API calls and bodies posted to response URLs."""
    sent: list[Sent] = []
    with fake_slack.lock:
        calls = list(fake_slack.calls)
        responses = list(fake_slack.responses)
    for call in calls:
        if call.method in MESSAGE_METHODS:
            sent.append(Sent(call.method, "message", call.args))
        elif call.method in VIEW_METHODS:
            view = call.args.get("view")
            assert isinstance(view, dict), f"{call.method} sent no view object: {view!r}"
            sent.append(Sent(call.method, "view", view))
    for key, body in responses:
        sent.append(Sent(f"response_url:{key}", "message", body))
    return sent


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS, where: str = "blocks") -> None:
    """Raise AssertionError (or slack_sdk's SlackObjectFormationError) when `blocks` is not valid Block Kit."""
    assert isinstance(blocks, list), f"{where}: blocks must be a list, not {type(blocks).__name__}"
    assert 0 < len(blocks) <= max_blocks, f"{where}: {len(blocks)} blocks (Slack allows 1 to {max_blocks})"
    for index, raw in enumerate(blocks):
        here = f"{where}[{index}]"
        assert isinstance(raw, dict), f"{here}: a block must be an object"
        block = Block.parse(raw)
        assert block is not None, f"{here}: unknown block type {raw.get('type')!r}"
        block.validate_json()
        block.to_dict()  # validates every nested element, text object and confirm dialog
        _check_limits(raw, here)


def validate_view(view: Any, *, where: str = "view") -> None:
    assert isinstance(view, dict), f"{where}: a view must be an object"
    model = View(**view)
    model.validate_json()
    model.to_dict()
    validate_blocks(view.get("blocks"), max_blocks=MAX_MODAL_BLOCKS, where=f"{where}.blocks")


def _check_limits(block: dict[str, Any], where: str) -> None:
    for path, obj in text_objects(block, where):
        assert isinstance(obj.get("text"), str) and obj["text"], f"{path}: a text object needs non-empty text"
        assert len(obj["text"]) <= TEXT_OBJECT_LIMIT, f"{path}: text over {TEXT_OBJECT_LIMIT} characters"
    if block.get("type") == "section":
        text = block.get("text")
        if isinstance(text, dict):
            assert len(text.get("text", "")) <= SECTION_TEXT_LIMIT, f"{where}: section text over {SECTION_TEXT_LIMIT}"
        fields = block.get("fields") or []
        assert len(fields) <= SECTION_FIELDS, f"{where}: {len(fields)} section fields (at most {SECTION_FIELDS})"
        for i, field in enumerate(fields):
            assert len(field.get("text", "")) <= SECTION_FIELD_LIMIT, f"{where}.fields[{i}] over {SECTION_FIELD_LIMIT}"


def text_objects(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Block Kit text object (plain_text or mrkdwn) inside `node`, with its path."""
    if isinstance(node, dict):
        if node.get("type") in TEXT_TYPES and "text" in node:
            yield where, node
        for key, value in node.items():
            yield from text_objects(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from text_objects(item, f"{where}[{index}]")


def assert_valid_block_kit(fake_slack: FakeSlack) -> int:
    """Validate every blocks list and view the app sent to fake Slack; returns how many were checked."""
    checked = 0
    for sent in sent_to_slack(fake_slack):
        if sent.kind == "view":
            validate_view(sent.payload, where=sent.where)
            checked += 1
        else:
            text = sent.payload.get("text")
            assert not isinstance(text, str) or len(text) <= MESSAGE_TEXT_LIMIT, f"{sent.where}: text over 40,000"
            if sent.payload.get("blocks") is not None:
                validate_blocks(sent.payload["blocks"], where=f"{sent.where}.blocks")
                checked += 1
    return checked


@pytest.fixture
def valid_block_kit(fake_slack: FakeSlack) -> Iterator[None]:
    """After the test, everything the app sent to fake Slack must be valid Block Kit."""
    yield
    assert_valid_block_kit(fake_slack)


def displayed_texts(fake_slack: FakeSlack) -> list[tuple[str, str, str]]:
    """(format, text, where) for every text a person could see in what the app sent.

    format is "plain_text" or "mrkdwn". A message's top-level ``text`` is mrkdwn unless the message says
    ``"mrkdwn": false`` (it is also the notification text when there are blocks).
    """
    shown: list[tuple[str, str, str]] = []
    for sent in sent_to_slack(fake_slack):
        payload = sent.payload
        if sent.kind == "message":
            text = payload.get("text")
            if isinstance(text, str) and text:
                shown.append(("plain_text" if payload.get("mrkdwn") is False else "mrkdwn", text, sent.where))
            nodes: Any = payload.get("blocks") or []
        else:
            nodes = [payload.get(key) for key in ("title", "submit", "close")] + list(payload.get("blocks") or [])
        for path, obj in text_objects(nodes, sent.where):
            shown.append((obj["type"], str(obj.get("text", "")), path))
    return shown
