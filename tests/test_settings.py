"""Settings: defaults, and one clear line naming what is missing or malformed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import describe
from bot.config import (
    PRODUCTION_ENDPOINT_URL,
    SANDBOX_ENDPOINT_URL,
    MTurkEnvironment,
    SettingsError,
    load_settings,
)

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "GRANT_REQUESTERS": "U01, U02",
    "GRANT_APPROVERS": "U03",
    "APPROVAL_CHANNEL": "C01",
}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.mturk_env is MTurkEnvironment.SANDBOX
    assert settings.mturk_endpoint_url == SANDBOX_ENDPOINT_URL
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.requesters == {"U01", "U02"} and not settings.allow_self_approval
    assert settings.database_url == "sqlite:///grant-qual.db" and settings.port == 3000
    assert not settings.socket_mode


def test_endpoint_overrides_are_respected() -> None:
    production = load_settings({**BASE, "MTURK_ENV": "production"})
    assert (production.mturk_endpoint_url, production.mturk_endpoint_setting) == (PRODUCTION_ENDPOINT_URL, None)
    fake = load_settings({**BASE, "MTURK_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert (fake.mturk_endpoint_url, fake.mturk_endpoint_setting) == ("http://127.0.0.1:9", "MTURK_ENDPOINT_URL")
    # boto3's own endpoint settings are read by the app and passed on, in boto3's order of precedence.
    for name in ("AWS_ENDPOINT_URL_MTURK", "AWS_ENDPOINT_URL"):
        proxied = load_settings({**BASE, name: "http://127.0.0.1:9"})
        assert (proxied.mturk_endpoint_url, proxied.mturk_endpoint_setting) == ("http://127.0.0.1:9", name)
    both = load_settings({**BASE, "AWS_ENDPOINT_URL_MTURK": "http://127.0.0.1:8", "AWS_ENDPOINT_URL": "http://x:9"})
    assert both.mturk_endpoint_url == "http://127.0.0.1:8"
    ignored = {**BASE, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert load_settings(ignored).mturk_endpoint_url == SANDBOX_ENDPOINT_URL


@pytest.mark.parametrize("name", ["MTURK_ENDPOINT_URL", "AWS_ENDPOINT_URL_MTURK", "AWS_ENDPOINT_URL"])
@pytest.mark.parametrize(
    ("mturk_env", "endpoint", "other"),
    [
        ("sandbox", "https://mturk-requester.us-east-1.amazonaws.com", "PRODUCTION"),
        ("sandbox", "HTTPS://MTurk-Requester.us-east-1.amazonaws.com:443/", "PRODUCTION"),
        ("", "https://mturk-requester.us-east-1.amazonaws.com.", "PRODUCTION"),
        ("production", "https://mturk-requester-sandbox.us-east-1.amazonaws.com", "SANDBOX"),
        ("production", "http://mturk-requester-sandbox.us-east-1.amazonaws.com:8443", "SANDBOX"),
    ],
)
def test_endpoint_of_the_other_environment_stops_the_app(name: str, mturk_env: str, endpoint: str, other: str) -> None:
    chosen = {"MTURK_ENV": mturk_env} if mturk_env else {}  # "": left unset, so the default (sandbox)
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **chosen, name: endpoint})
    message = str(caught.value)
    assert "MTURK_ENV" in message and name in message and f"MTurk's {other} endpoint" in message
    assert "\n" not in message and "README" in message


@pytest.mark.parametrize("mturk_env", ["sandbox", "production"])
def test_endpoint_of_the_same_environment_or_a_proxy_is_allowed(mturk_env: str) -> None:
    own = SANDBOX_ENDPOINT_URL if mturk_env == "sandbox" else PRODUCTION_ENDPOINT_URL
    for endpoint in (own + "/", "http://127.0.0.1:4566", "https://mturk-proxy.example.org"):
        settings = load_settings({**BASE, "MTURK_ENV": mturk_env, "AWS_ENDPOINT_URL_MTURK": endpoint})
        assert settings.mturk_endpoint_url == endpoint and settings.mturk_env == mturk_env


def test_start_up_line_shows_the_endpoint_used() -> None:
    assert "(http://127.0.0.1:4566, set by AWS_ENDPOINT_URL)" in describe(
        load_settings({**BASE, "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    )
    assert f"MTurk PRODUCTION ({PRODUCTION_ENDPOINT_URL})" in describe(
        load_settings({**BASE, "MTURK_ENV": "production"})
    )


def test_socket_mode_needs_no_signing_secret() -> None:
    env = {k: v for k, v in BASE.items() if k != "SLACK_SIGNING_SECRET"}
    assert load_settings({**env, "SLACK_APP_TOKEN": "xapp-1"}).socket_mode


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"GRANT_APPROVERS": ""}, "missing setting(s) GRANT_APPROVERS"),
        ({"GRANT_APPROVERS": "alice"}, "Slack user IDs like U012ABCDEF or user group IDs like S012ABCDEF"),
        ({"APPROVAL_CHANNEL": "#approvals"}, "APPROVAL_CHANNEL must be a Slack channel ID"),
        ({"MTURK_ENV": "prod"}, "MTURK_ENV must be 'sandbox' or 'production'"),
        ({"ALLOW_SELF_APPROVAL": "sometimes"}, "ALLOW_SELF_APPROVAL must be true or false"),
        ({"PORT": "http"}, "PORT must be a whole number"),
        ({"SLACK_BOT_TOKEN": "not-a-token"}, "SLACK_BOT_TOKEN must start with 'xoxb-'"),
        ({"SLACK_CLIENT_ID": "1", "SLACK_CLIENT_SECRET": "2"}, "OAuth mode"),
    ],
)
def test_malformed_settings_are_named(change: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **change})
    assert fragment in str(caught.value) and "README" in str(caught.value)
    assert "not-a-token" not in str(caught.value)


PASTED = "-1234-5678-PastedValue"  # part of every pasted token below: a message names a token, never echoes it


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"SLACK_BOT_TOKEN": "xoxb-..."},
            "SLACK_BOT_TOKEN is still the example value from .env.example; paste the Bot User OAuth Token (xoxb-…) "
            "from OAuth & Permissions",
        ),
        (
            {"SLACK_APP_TOKEN": "xapp-…"},
            "SLACK_APP_TOKEN is still the example value from .env.example; paste an app-level token (xapp-…) from "
            "Basic Information → App-Level Tokens (scope connections:write), or leave it empty and set "
            "SLACK_SIGNING_SECRET to serve HTTP",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxp" + PASTED},
            "SLACK_BOT_TOKEN holds a user token (xoxp-…); paste the Bot User OAuth Token (xoxb-…) from "
            "OAuth & Permissions",
        ),
        (
            {"SLACK_BOT_TOKEN": "xapp" + PASTED},
            "SLACK_BOT_TOKEN holds an app-level token (xapp-…), which belongs in SLACK_APP_TOKEN; paste the Bot User "
            "OAuth Token (xoxb-…) from OAuth & Permissions",
        ),
        (
            {"SLACK_BOT_TOKEN": "0123456789abcdef0123456789abcdef"},
            "SLACK_BOT_TOKEN holds an app credential (the Signing Secret or Client Secret), not a token; paste the "
            "Bot User OAuth Token (xoxb-…)",
        ),
        (
            {"SLACK_APP_TOKEN": "xoxb" + PASTED},
            "SLACK_APP_TOKEN holds a bot token (xoxb-…), which belongs in SLACK_BOT_TOKEN; paste an app-level token "
            "(xapp-…)",
        ),
        ({"SLACK_APP_TOKEN": "xoxp" + PASTED}, "SLACK_APP_TOKEN holds a user token (xoxp-…); paste an app-level token"),
        (
            {"SLACK_BOT_TOKEN": "xapp" + PASTED, "SLACK_APP_TOKEN": "xoxb" + PASTED},
            "SLACK_BOT_TOKEN and SLACK_APP_TOKEN are swapped: the xoxb-… token goes in SLACK_BOT_TOKEN, the xapp-… "
            "one in SLACK_APP_TOKEN",
        ),
        (
            {"SLACK_SIGNING_SECRET": "xoxb" + PASTED},
            "SLACK_SIGNING_SECRET holds a bot token (xoxb-…); paste the Signing Secret from Basic Information → "
            "App Credentials",
        ),
    ],
)
def test_each_token_slot_names_the_token_pasted_by_mistake(change: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **change})
    assert str(caught.value).startswith(expected)
    assert PASTED not in str(caught.value) and "0123456789abcdef" not in str(caught.value)


def test_both_example_tokens_are_named_in_one_line() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "SLACK_BOT_TOKEN": "xoxb-...", "SLACK_APP_TOKEN": "xapp-..."})
    message = str(caught.value)
    assert "\n" not in message
    assert "SLACK_BOT_TOKEN is still the example value" in message
    assert "SLACK_APP_TOKEN is still the example value" in message


@pytest.mark.parametrize(
    ("unset", "expected"),
    [
        (
            ["SLACK_SIGNING_SECRET"],
            "missing setting(s) SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP) (see",
        ),
        (
            ["SLACK_SIGNING_SECRET", "APPROVAL_CHANNEL"],
            "missing setting(s) APPROVAL_CHANNEL and SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)",
        ),
        (["GRANT_REQUESTERS", "GRANT_APPROVERS"], "missing setting(s) GRANT_REQUESTERS and GRANT_APPROVERS (see"),
    ],
)
def test_missing_settings_say_socket_mode_or_http_needs_one_of_two(unset: list[str], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value for name, value in BASE.items() if name not in unset})
    assert str(caught.value).startswith(expected)


def test_missing_settings_mention_example_tokens_left_in_place() -> None:
    env = {**BASE, "SLACK_BOT_TOKEN": "xoxb-...", "APPROVAL_CHANNEL": ""}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert str(caught.value).startswith(
        "missing setting(s) APPROVAL_CHANNEL; SLACK_BOT_TOKEN still holds the example value from .env.example"
    )


def test_python_app_py_without_settings_prints_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANT_", "APPROVAL_", "MTURK_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SLACK_BOT_TOKEN" in lines[0] and "GRANT_REQUESTERS" in lines[0]
    assert "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)" in lines[0]
    assert "README" in lines[0] and "Traceback" not in result.stderr
