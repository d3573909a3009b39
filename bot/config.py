"""Settings: read once from the environment (and `.env`), validated with one clear error line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

README_HINT = "see the Settings section of README.md"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
SANDBOX_ENDPOINT_URL = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
PRODUCTION_ENDPOINT_URL = "https://mturk-requester.us-east-1.amazonaws.com"
# Where the MTurk endpoint may be set, in boto3's order of precedence (our own setting first).
ENDPOINT_SETTINGS = ("MTURK_ENDPOINT_URL", "AWS_ENDPOINT_URL_MTURK", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class TokenSlot:
    """A setting that holds a Slack token: the prefix it needs and where in the app's settings to find it."""

    name: str
    prefix: str
    what: str
    where: str

    def wanted(self) -> str:
        return f"{self.what} ({self.prefix}…) {self.where}"


BOT_TOKEN = TokenSlot("SLACK_BOT_TOKEN", "xoxb-", "the Bot User OAuth Token", "from OAuth & Permissions")
APP_TOKEN = TokenSlot(
    "SLACK_APP_TOKEN",
    "xapp-",
    "an app-level token",
    "from Basic Information → App-Level Tokens (scope connections:write), or leave it empty and set "
    "SLACK_SIGNING_SECRET to serve HTTP",
)
# What a token's prefix says it is, to name the token a user most likely pasted by mistake.
_TOKEN_KINDS = {
    "xoxb-": "a bot token (xoxb-…)",
    "xoxp-": "a user token (xoxp-…)",
    "xapp-": "an app-level token (xapp-…)",
    "xoxe": "a rotating, refresh or configuration token (xoxe…)",
}
# An allowlist entry: a user ID (U…, W… on Enterprise Grid) or a user group ID (S…).
_SLACK_USER_OR_GROUP_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class MTurkEnvironment(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"

    @property
    def label(self) -> str:
        """How every message names the environment: unmistakable, upper-case."""
        return self.value.upper()

    @property
    def endpoint_url(self) -> str:
        return SANDBOX_ENDPOINT_URL if self is MTurkEnvironment.SANDBOX else PRODUCTION_ENDPOINT_URL


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line meant for the operator."""


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str
    slack_signing_secret: str
    slack_app_token: str | None
    slack_api_url: str
    requesters: frozenset[str]
    approvers: frozenset[str]
    approval_channel: str
    allow_self_approval: bool
    mturk_env: MTurkEnvironment
    # Always passed to boto3 explicitly, so no boto3 setting can send the calls elsewhere than it says.
    mturk_endpoint_url: str
    # The setting that chose the endpoint (one of ENDPOINT_SETTINGS), or None for MTURK_ENV's own endpoint.
    mturk_endpoint_setting: str | None
    database_url: str
    port: int
    mturk_max_concurrency: int
    mturk_max_tps: float
    max_workers_per_request: int
    # How long a grant whose process died waits before another process (or a restart) resumes it.
    lease_seconds: int
    # A request nobody decided on expires after this many hours; its approvers are reminded once before (0: never).
    request_ttl_hours: int = 72
    remind_after_hours: int = 24
    # A grant's requester is told this many hours before it expires (0: never).
    expiry_notice_hours: int = 24
    log_format: str = "text"  # LOG_FORMAT: "text" lines, or "json" (one object per line)
    # Where /healthz and /metrics are served besides PORT in HTTP mode (in Socket Mode: the only place); None: not.
    metrics_port: int | None = None

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def user_groups(self) -> frozenset[str]:
        """The Slack user group IDs (S…) the allowlists name; their members are read from Slack."""
        return frozenset(entry for entry in self.requesters | self.approvers if entry.startswith("S"))

    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line or a message."""
        return tuple(s for s in (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token) if s)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping, or raise SettingsError naming what is wrong."""
    env = {key: value.strip() for key, value in environ.items()}
    _require_filled_in(env)
    app_token = env.get("SLACK_APP_TOKEN") or None
    if env.get("SLACK_CLIENT_ID") and env.get("SLACK_CLIENT_SECRET"):
        raise SettingsError(
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set, which would switch Bolt to OAuth mode; "
            f"grant-qual uses SLACK_BOT_TOKEN, so unset them ({README_HINT})"
        )
    mturk_env = _parse_mturk_env(env.get("MTURK_ENV", "sandbox"))
    endpoint_url, endpoint_setting = _mturk_endpoint(env, mturk_env)
    return Settings(
        slack_bot_token=_token(env, BOT_TOKEN),
        slack_signing_secret=_signing_secret(env),
        slack_app_token=_token(env, APP_TOKEN) if app_token else None,
        slack_api_url=_url(env, "SLACK_API_URL", DEFAULT_SLACK_API_URL, trailing_slash=True),
        requesters=_user_ids(env, "GRANT_REQUESTERS"),
        approvers=_user_ids(env, "GRANT_APPROVERS"),
        approval_channel=_channel_id(env, "APPROVAL_CHANNEL"),
        allow_self_approval=_bool(env, "ALLOW_SELF_APPROVAL", default=False),
        mturk_env=mturk_env,
        mturk_endpoint_url=endpoint_url,
        mturk_endpoint_setting=endpoint_setting,
        database_url=env.get("DATABASE_URL") or "sqlite:///grant-qual.db",
        port=_int(env, "PORT", default=3000, low=1, high=65535),
        mturk_max_concurrency=_int(env, "MTURK_MAX_CONCURRENCY", default=20, low=1, high=200),
        mturk_max_tps=float(_int(env, "MTURK_MAX_TPS", default=200, low=1, high=10_000)),
        max_workers_per_request=_int(env, "MAX_WORKERS_PER_REQUEST", default=10_000, low=1, high=100_000),
        lease_seconds=_int(env, "GRANT_LEASE_SECONDS", default=30, low=2, high=3600),
        **_pending_hours(env),
        **_operations(env),
        expiry_notice_hours=_int(env, "EXPIRY_NOTICE_HOURS", default=24, low=0, high=24 * 365),
    )


def _operations(env: Mapping[str, str]) -> dict[str, str | int | None]:
    """LOG_FORMAT (text or json) and METRICS_PORT (not PORT: that one serves the routes already in HTTP mode)."""
    log_format = env.get("LOG_FORMAT", "").lower() or "text"
    if log_format not in ("text", "json"):
        raise SettingsError(f"LOG_FORMAT must be 'text' or 'json', not {env['LOG_FORMAT']!r} ({README_HINT})")
    metrics_port = _int(env, "METRICS_PORT", default=0, low=1, high=65535) if env.get("METRICS_PORT") else None
    if (
        metrics_port is not None
        and not env.get("SLACK_APP_TOKEN")
        and metrics_port == _int(env, "PORT", default=3000, low=1, high=65535)
    ):
        raise SettingsError(
            f"METRICS_PORT ({metrics_port}) is PORT: in HTTP mode /healthz and /metrics are served on PORT already; "
            f"leave METRICS_PORT empty or choose another port ({README_HINT})"
        )
    return {"log_format": log_format, "metrics_port": metrics_port}


def _pending_hours(env: Mapping[str, str]) -> dict[str, int]:
    """REQUEST_TTL_HOURS and REMIND_AFTER_HOURS: a reminder comes before the expiry, or never (0)."""
    ttl = _int(env, "REQUEST_TTL_HOURS", default=72, low=1, high=24 * 365)
    remind = _int(env, "REMIND_AFTER_HOURS", default=24, low=0, high=24 * 365)
    if remind >= ttl:
        given = "" if env.get("REMIND_AFTER_HOURS") else ", the default"
        raise SettingsError(
            f"REMIND_AFTER_HOURS ({remind}{given}) must be less than REQUEST_TTL_HOURS ({ttl}), or 0 for no "
            f"reminder ({README_HINT})"
        )
    return {"request_ttl_hours": ttl, "remind_after_hours": remind}


def _mturk_endpoint(env: Mapping[str, str], mturk_env: MTurkEnvironment) -> tuple[str, str | None]:
    """The endpoint URL and the setting that chose it; an override must not be the other environment's host."""
    names = ENDPOINT_SETTINGS
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        names = ("MTURK_ENDPOINT_URL",)  # boto3 would ignore its own two, as that setting asks
    for name in names:
        if env.get(name):
            url = _url(env, name, "", trailing_slash=False)
            _check_endpoint_environment(env, name, url, mturk_env)
            return url, name
    return mturk_env.endpoint_url, None


def _check_endpoint_environment(env: Mapping[str, str], name: str, url: str, mturk_env: MTurkEnvironment) -> None:
    # Hosts only: scheme, port, path and case do not change which MTurk a call reaches. A proxy or a fake is fine.
    host = (urlsplit(url).hostname or "").rstrip(".")
    other = next(e for e in MTurkEnvironment if e is not mturk_env)
    if host != urlsplit(other.endpoint_url).hostname:
        return
    chosen = f"MTURK_ENV={mturk_env.value}" if env.get("MTURK_ENV") else f"MTURK_ENV is unset ({mturk_env.value})"
    raise SettingsError(
        f"{chosen} but {name} points at MTurk's {other.label} endpoint ({host}): every message would say "
        f"{mturk_env.label} while the grants happen in {other.label}; set MTURK_ENV={other.value} or unset {name} "
        f"({README_HINT})"
    )


def _parse_mturk_env(raw: str) -> MTurkEnvironment:
    try:
        return MTurkEnvironment(raw.lower())
    except ValueError:
        raise SettingsError(f"MTURK_ENV must be 'sandbox' or 'production', not {raw!r} ({README_HINT})") from None


def _require_filled_in(env: Mapping[str, str]) -> None:
    """Every required setting has a value, and no token is still the example from .env.example."""
    missing = [
        name
        for name in ("SLACK_BOT_TOKEN", "GRANT_REQUESTERS", "GRANT_APPROVERS", "APPROVAL_CHANNEL")
        if not env.get(name)
    ]
    if not env.get("SLACK_APP_TOKEN") and not env.get("SLACK_SIGNING_SECRET"):
        missing.append("SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)")
    examples = [slot for slot in (BOT_TOKEN, APP_TOKEN) if _is_example(env.get(slot.name, ""))]
    if missing:
        names = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
        still = ""
        if examples:
            verb = "still hold" if len(examples) > 1 else "still holds"
            still = f"; {' and '.join(slot.name for slot in examples)} {verb} the example value from .env.example"
        raise SettingsError(f"missing setting(s) {names}{still} ({README_HINT})")
    if examples:
        raise SettingsError(
            ". ".join(
                f"{slot.name} is still the example value from .env.example; paste {slot.wanted()}" for slot in examples
            )
        )


def _is_example(value: str) -> bool:
    # .env.example writes tokens as "xoxb-..."; real tokens are letters, digits and dashes, never an ellipsis.
    return "..." in value or "…" in value


def _token(env: Mapping[str, str], slot: TokenSlot) -> str:
    value = env[slot.name]
    if value.startswith(slot.prefix):
        return value
    # Never echo the value: it may be a real secret pasted in the wrong place. Name what it looks like instead.
    other = APP_TOKEN if slot is BOT_TOKEN else BOT_TOKEN
    if value.startswith(other.prefix) and env.get(other.name, "").startswith(slot.prefix):
        raise SettingsError(
            f"SLACK_BOT_TOKEN and SLACK_APP_TOKEN are swapped: the {BOT_TOKEN.prefix}… token goes in SLACK_BOT_TOKEN, "
            f"the {APP_TOKEN.prefix}… one in SLACK_APP_TOKEN"
        )
    kind = _token_kind(value)
    if kind is None:
        raise SettingsError(f"{slot.name} must start with {slot.prefix!r}; paste {slot.wanted()} ({README_HINT})")
    belongs = f", which belongs in {other.name}" if value.startswith(other.prefix) else ""
    raise SettingsError(f"{slot.name} holds {kind}{belongs}; paste {slot.wanted()}")


def _token_kind(value: str) -> str | None:
    """What a pasted credential most likely is, from its shape."""
    for prefix, kind in _TOKEN_KINDS.items():
        if value.startswith(prefix):
            return kind
    if re.fullmatch(r"[0-9a-f]{32}", value):
        return "an app credential (the Signing Secret or Client Secret), not a token"
    return None


def _signing_secret(env: Mapping[str, str]) -> str:
    value = env.get("SLACK_SIGNING_SECRET", "")
    if value.startswith(("xox", "xapp-")):
        kind = _token_kind(value) or "a Slack token"
        raise SettingsError(
            f"SLACK_SIGNING_SECRET holds {kind}; paste the Signing Secret from Basic Information → App Credentials"
        )
    return value


def _url(env: Mapping[str, str], name: str, default: str, *, trailing_slash: bool) -> str:
    value = env.get(name) or default
    if not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
        raise SettingsError(f"{name} must be an http(s) URL, not {value!r} ({README_HINT})")
    if trailing_slash and not value.endswith("/"):
        value += "/"
    return value


def _user_ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    ids = [part.strip() for part in env[name].split(",") if part.strip()]
    bad = [i for i in ids if not _SLACK_USER_OR_GROUP_ID.match(i)]
    if bad or not ids:
        raise SettingsError(
            f"{name} must be comma-separated Slack user IDs like U012ABCDEF or user group IDs like S012ABCDEF; "
            f"bad: {', '.join(bad) or '(empty)'} "
            f"({README_HINT})"
        )
    return frozenset(ids)


def _channel_id(env: Mapping[str, str], name: str) -> str:
    value = env[name]
    if not _SLACK_CHANNEL_ID.match(value):
        raise SettingsError(f"{name} must be a Slack channel ID like C012ABCDEF, not {value!r} ({README_HINT})")
    return value


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r} ({README_HINT})")


def _int(env: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r} ({README_HINT})") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value} ({README_HINT})")
    return value
