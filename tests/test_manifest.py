"""manifest.yml creates the app as it is: valid against Slack's schema, with what the code uses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from bot.slack.selfcheck import BOT_SCOPES
from tests.conftest import load_manifest

# Slack's schema, kept in the repository (with its licence) so the test needs nothing beside the clone.
SCHEMA = Path(__file__).resolve().parent / "schemas" / "slack-app-manifest.schema.1.0.0.json"


def test_manifest_matches_slack_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(load_manifest(), schema)


def test_manifest_declares_command_interactivity_socket_mode_and_minimal_scopes() -> None:
    manifest = load_manifest()
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/grant-qual" and command["description"] and command["usage_hint"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "channels:history",
        "chat:write",
        "commands",
        "files:read",
        "files:write",
        "groups:history",
        "im:history",
        "im:write",
        "usergroups:read",
    ]


def test_manifest_subscribes_to_user_group_changes() -> None:
    # Both events are delivered to apps holding usergroups:read; the app reads the group again on either.
    manifest = load_manifest()
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"subteam_members_changed", "subteam_updated"} <= set(events)
    assert "usergroups:read" in manifest["oauth_config"]["scopes"]["bot"]


def test_manifest_enables_app_home_and_its_events() -> None:
    # The Home tab is published on app_home_opened (no scope needed); DMs to the app arrive as message.im,
    # which Slack delivers only with im:history.
    manifest = load_manifest()
    assert manifest["features"]["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": False,
    }
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(events) == ["app_home_opened", "message.im", "subteam_members_changed", "subteam_updated"]
    assert "im:history" in manifest["oauth_config"]["scopes"]["bot"]


def test_manifest_declares_the_shortcuts_the_app_listens_for() -> None:
    from bot.slack.shortcuts import GLOBAL_SHORTCUT, MESSAGE_SHORTCUT

    shortcuts = {s["callback_id"]: s for s in load_manifest()["features"]["shortcuts"]}
    assert shortcuts.keys() == {GLOBAL_SHORTCUT, MESSAGE_SHORTCUT}
    assert shortcuts[GLOBAL_SHORTCUT]["type"] == "global"
    assert shortcuts[MESSAGE_SHORTCUT]["type"] == "message"
    assert "commands" in load_manifest()["oauth_config"]["scopes"]["bot"]  # shortcuts need it


def test_the_self_check_expects_the_scopes_the_manifest_asks_for() -> None:
    assert set(load_manifest()["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
