"""The self-check's Slack items: the bot token, the scopes it holds, the app token, the approvals channel and
the user groups the allowlists name.

Each is one Web API call with a short timeout (a 5xx or 429 is retried twice), answered in one line that says
what to do.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from http.client import HTTPException
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.web import SlackResponse

from bot.config import Settings
from bot.selfcheck import Check, CheckFailed

# The bot scopes grant-qual calls Slack with; manifest.yml asks for exactly these (tests/test_manifest.py).
BOT_SCOPES = frozenset(
    {
        "commands",
        "chat:write",
        "channels:history",
        "groups:history",
        "files:read",
        "files:write",
        "im:write",
        "im:history",
        "usergroups:read",
    }
)
CHECK_TIMEOUT_SECONDS = 10
REINSTALL = "OAuth & Permissions → Reinstall to Workspace"
BOT_TOKEN_ADVICE = "copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions"
APP_TOKEN_ADVICE = (
    "generate an app-level token with the connections:write scope under Basic Information → App-Level Tokens, "
    "or leave SLACK_APP_TOKEN empty and set SLACK_SIGNING_SECRET to serve HTTP"
)


class SlackSelfCheck:
    """The Slack checks, in order; the later ones use what auth.test told the first."""

    def __init__(self, settings: Settings, *, timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.timeout = timeout
        # A failed call is reported in the check's own line; slack_sdk would log it a second time.
        quiet = logging.getLogger("grant-qual.selfcheck.slack")
        quiet.propagate = False
        quiet.handlers = [logging.NullHandler()]
        self.client = WebClient(
            token=settings.slack_bot_token,
            base_url=settings.slack_api_url,
            timeout=int(timeout),
            # Every check is a read, so retrying is safe: a replica restarting during a brief Slack hiccup (a 503,
            # a 429) must not refuse to start. An unreachable Slack is still told at once (no connection retries).
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2), ServerErrorRetryHandler(max_retry_count=2)],
            logger=quiet,
        )
        self._identity: SlackResponse | None = None

    def checks(self) -> list[Check]:
        checks = [Check("Slack bot token", self.bot_token), Check("Slack scopes", self.scopes)]
        if self.settings.socket_mode:
            checks.append(Check("Slack app token", self.app_token))
        checks.append(Check("Approvals channel", self.approval_channel))
        if self.settings.user_groups:
            checks.append(Check("Slack user groups", self.user_groups))
        return checks

    def bot_token(self) -> str:
        identity = self._call(
            self.client.auth_test,
            "Slack refused SLACK_BOT_TOKEN",
            {
                "invalid_auth": BOT_TOKEN_ADVICE,
                "not_authed": BOT_TOKEN_ADVICE,
                "token_revoked": f"the app was uninstalled or the token revoked; reinstall it ({REINSTALL})",
                "account_inactive": f"the app was uninstalled or the token revoked; reinstall it ({REINSTALL})",
            },
        )
        self._identity = identity
        return (
            f"bot @{identity.get('user')} ({identity.get('user_id')}) in workspace "
            f"{identity.get('team')} ({identity.get('team_id')})"
        )

    def scopes(self) -> str:
        identity = self._require_identity()
        header = _header(identity.headers, "x-oauth-scopes")
        if header is None:
            raise CheckFailed(
                "Slack did not say which scopes the bot token holds (no x-oauth-scopes header); "
                "is a proxy between here and Slack?"
            )
        granted = {scope.strip() for scope in header.split(",") if scope.strip()}
        missing = sorted(BOT_SCOPES - granted)
        if missing:
            raise CheckFailed(
                f"the bot token lacks {', '.join(missing)}; add them under OAuth & Permissions (or create the app "
                f"from manifest.yml again) and reinstall it ({REINSTALL})"
            )
        extra = sorted(granted - BOT_SCOPES)
        return f"all {len(BOT_SCOPES)} the app needs" + (f" (also granted: {', '.join(extra)})" if extra else "")

    def app_token(self) -> str:
        app_token = self.settings.slack_app_token
        assert app_token is not None
        self._call(
            lambda: self.client.apps_connections_open(app_token=app_token),
            "Slack refused SLACK_APP_TOKEN",
            {
                "invalid_auth": APP_TOKEN_ADVICE,
                "not_authed": APP_TOKEN_ADVICE,
                "token_revoked": APP_TOKEN_ADVICE,
                "missing_scope": "the app-level token lacks connections:write; " + APP_TOKEN_ADVICE,
                "socket_mode_not_enabled": "turn Socket Mode on (Settings → Socket Mode), "
                "or leave SLACK_APP_TOKEN empty and set SLACK_SIGNING_SECRET to serve HTTP",
            },
        )
        return "Socket Mode accepts it"

    def approval_channel(self) -> str:
        identity = self._require_identity()
        channel, bot = self.settings.approval_channel, f"@{identity.get('user')}"
        self._call(
            lambda: self.client.conversations_history(channel=channel, limit=1),
            f"Slack refused to read {channel}",
            {
                "not_in_channel": f"the bot is not a member: open the channel in Slack and type /invite {bot}",
                "channel_not_found": "no such channel, or a private one the bot is not in: check APPROVAL_CHANNEL "
                f"(channel details → bottom), or type /invite {bot} in the channel",
                "missing_scope": "the bot token cannot read channels (channels:history, groups:history); "
                f"add the scopes and reinstall the app ({REINSTALL})",
            },
        )
        return f"{channel}, the bot {bot} is a member"

    def user_groups(self) -> str:
        """Each user group the allowlists name exists, with its handle and how many members it has now."""
        self._require_identity()
        advice = {"missing_scope": f"the bot token lacks usergroups:read; add it and reinstall the app ({REINSTALL})"}
        listed = self._call(lambda: self.client.usergroups_list(include_disabled=True), "Slack refused", advice)
        handles = {str(g.get("id")): str(g.get("handle")) for g in listed.get("usergroups") or []}
        found = []
        for group_id in sorted(self.settings.user_groups):
            if group_id not in handles:
                raise CheckFailed(
                    f"{group_id} in GRANT_REQUESTERS or GRANT_APPROVERS is not a user group of this workspace; "
                    "copy the group's ID from its page in Slack (People → User groups)"
                )
            users = (
                self._call(
                    lambda group_id=group_id: self.client.usergroups_users_list(usergroup=group_id),
                    f"Slack refused to list the members of {group_id}",
                    advice,
                ).get("users")
                or []
            )
            found.append(f"@{handles[group_id]} ({group_id}) {len(users)} member(s)")
        return ", ".join(found)

    def _require_identity(self) -> SlackResponse:
        if self._identity is None:
            raise CheckFailed("not checked until Slack accepts SLACK_BOT_TOKEN")
        return self._identity

    def _call(
        self,
        call: Callable[[], SlackResponse],
        refused: str,
        advice: Mapping[str, str],
    ) -> SlackResponse:
        """Make one call; any failure becomes a CheckFailed line saying what Slack refused and what to do."""
        url = self.settings.slack_api_url
        try:
            return call()
        except SlackApiError as error:
            data = error.response.data if isinstance(error.response.data, dict) else {}
            code = str(data.get("error") or "")
            if error.response.status_code != 200 or not re.fullmatch(r"[a-z_]+", code):
                # An edge or proxy answer (5xx, 429, an HTML page): slack_sdk fills in `error` with its own text.
                said = f" ({code})" if re.fullmatch(r"[a-z_]+", code) else ""
                raise CheckFailed(
                    f"Slack answered HTTP {error.response.status_code}{said} at {url}; try again later, "
                    "or check SLACK_API_URL and any proxy (HTTPS_PROXY)"
                ) from None
            hint = advice.get(code)
            raise CheckFailed(f"{refused} ({code})" + (f"; {hint}" if hint else "")) from None
        except (SlackClientError, URLError, HTTPException, OSError) as error:
            raise CheckFailed(
                f"cannot reach Slack at {url} ({_network_reason(error, self.timeout)}); "
                "check the network, any proxy (HTTPS_PROXY) and SLACK_API_URL"
            ) from None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    return next((value for key, value in (headers or {}).items() if key.lower() == name), None)


def _network_reason(error: BaseException, timeout: float) -> str:
    reason = error.reason if isinstance(error, URLError) else error
    if isinstance(reason, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted: {reason.verify_message}"
    return str(reason) or type(reason).__name__
