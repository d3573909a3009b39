"""The first ten minutes: `python app.py --check` and `python app.py`, as processes, against the wire-level fakes.

Each mis-setting a newcomer makes (the example tokens, swapped tokens, Slack out of reach, a refused app
token, missing or refused AWS keys, a channel the bot is not in) ends in one line that says what to do and a
non-zero exit status: never a traceback, and no database file left behind by a start that never got going.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values

from tests.app_process import ROOT, AppProcess, free_port
from tests.conftest import APPROVER, CHANNEL, REQUESTER, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.fakes.socket_mode import FakeSocketMode

CHECKS = ["Settings", "Slack bot token", "Slack scopes", "Approvals channel", "MTurk", "Database"]
SOCKET_MODE_CHECKS = ["Settings", "Slack bot token", "Slack scopes", "Slack app token", *CHECKS[3:]]
REQUIRED_IN_ENV_EXAMPLE = {
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "GRANT_REQUESTERS",
    "GRANT_APPROVERS",
    "APPROVAL_CHANNEL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}


def run_app(workdir: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """`python app.py` in `workdir`, with the test's environment (the autouse fixture cleaned the machine's)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *arguments],
        cwd=workdir,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=90,
    )


def check_lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """`--check`'s lines by item name, each "✓ …" or "✗ …"; nothing else may be printed."""
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    parsed = [re.fullmatch(r"([✓✗]) ([^:]+): (.+)", line) for line in lines]
    assert all(parsed), result.stdout
    return {match[2]: f"{match[1]} {match[3]}" for match in parsed if match}


def start_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a start that cannot go on prints; it exits 2 and prints nothing else."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("grant-qual cannot start: ✗ ")
    return lines[0]


def database_files(workdir: Path) -> list[str]:
    return sorted(path.name for path in workdir.glob("grant-qual.db*"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory: no .env, and where the default SQLite database would go."""
    directory = tmp_path / "workdir"
    directory.mkdir()
    return directory


@pytest.fixture
def gateway(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    socket_mode = FakeSocketMode()
    fake_slack.socket_mode = socket_mode
    yield socket_mode
    fake_slack.socket_mode = None
    socket_mode.close()


def http_env(fake_slack: FakeSlack, fake_mturk: FakeMTurk, **overrides: str) -> dict[str, str]:
    """HTTP mode against the fakes, with the default database (grant-qual.db in the working directory)."""
    env = app_environment(fake_slack, fake_mturk, "", **overrides)
    if not env["DATABASE_URL"]:
        del env["DATABASE_URL"]
    return env


def socket_env(fake_slack: FakeSlack, fake_mturk: FakeMTurk, **overrides: str) -> dict[str, str]:
    env = http_env(fake_slack, fake_mturk, **{"SLACK_APP_TOKEN": fake_slack.app_token, **overrides})
    del env["SLACK_SIGNING_SECRET"]
    return env


# ---------------------------------------------------------------------------------------------- all well


def test_check_passes_every_item_and_creates_nothing(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path
) -> None:
    result = run_app(workdir, http_env(fake_slack, fake_mturk), "--check")
    lines = check_lines(result)
    assert result.returncode == 0 and list(lines) == CHECKS
    assert all(line.startswith("✓") for line in lines.values()), result.stdout
    assert "MTurk SANDBOX" in lines["Settings"] and f"no .env in {workdir}" in lines["Settings"]
    assert "@grantbot (UBOT) in workspace Lab (T0001)" in lines["Slack bot token"]
    assert lines["Slack scopes"] == "✓ all 9 the app needs"
    assert lines["Approvals channel"] == f"✓ {CHANNEL}, the bot @grantbot is a member"
    assert lines["MTurk"] == f"✓ the SANDBOX ({fake_mturk.url}) accepted the credentials; balance $10,000.00"
    assert lines["Database"] == f"✓ {workdir / 'grant-qual.db'} does not exist yet; start-up creates it"
    assert database_files(workdir) == []
    assert [call.method for call in fake_slack.calls] == ["auth.test", "conversations.history"]
    assert fake_mturk.calls("GetAccountBalance") == [{}]


def test_check_in_socket_mode_opens_a_connection_with_the_app_token(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, gateway: FakeSocketMode, workdir: Path
) -> None:
    result = run_app(workdir, socket_env(fake_slack, fake_mturk), "--check")
    lines = check_lines(result)
    assert result.returncode == 0 and list(lines) == SOCKET_MODE_CHECKS, result.stdout
    assert lines["Slack app token"] == "✓ Socket Mode accepts it"
    (opened,) = fake_slack.calls_to("apps.connections.open")
    assert opened.headers["authorization"] == f"Bearer {fake_slack.app_token}"


def test_check_reports_an_existing_database_and_extra_scopes(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path, database_url: str
) -> None:
    from bot.store import GrantStore, create_database_engine

    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    store.engine.dispose()
    fake_slack.bot_scopes = {*(fake_slack.bot_scopes or ()), "users:read"}
    lines = check_lines(run_app(workdir, http_env(fake_slack, fake_mturk, DATABASE_URL=database_url), "--check"))
    assert re.fullmatch(r"✓ sqlite:///\S+ is at the latest migration \(\d{4}\)", lines["Database"])
    assert lines["Slack scopes"] == "✓ all 9 the app needs (also granted: users:read)"


def test_a_normal_start_prints_no_warning_and_creates_the_database_once_checked(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path
) -> None:
    process = AppProcess(http_env(fake_slack, fake_mturk), workdir)
    try:
        process.start()
        assert database_files(workdir)  # created by the start, after the checks passed
        assert process.terminate() == 0
    finally:
        process.stop()
    log = process.log()
    assert "WARNING" not in log and "Traceback" not in log and "will be unused" not in log, log
    assert "grant-qual starting" in log


def test_the_settings_marked_required_in_env_example_are_enough_for_socket_mode(
    fake_slack: FakeSlack,
    fake_mturk: FakeMTurk,
    gateway: FakeSocketMode,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Copy .env.example to .env and fill in only what it marks as required: the app runs, in Socket Mode."""
    example = (ROOT / ".env.example").read_text()
    assert {name for name in dotenv_values(ROOT / ".env.example")} == REQUIRED_IN_ENV_EXAMPLE
    filled = {
        "SLACK_BOT_TOKEN": fake_slack.bot_token,
        "SLACK_APP_TOKEN": fake_slack.app_token,
        "GRANT_REQUESTERS": REQUESTER,
        "GRANT_APPROVERS": APPROVER,
        "APPROVAL_CHANNEL": CHANNEL,
        "AWS_ACCESS_KEY_ID": FakeMTurk.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FakeMTurk.SECRET_KEY,
    }
    for name, value in filled.items():
        example = re.sub(rf"(?m)^{name}=.*$", f"{name}={value}", example)
    (workdir / ".env").write_text(example)
    # The keys come from .env alone; only where the fakes listen comes from the environment.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    where = {"SLACK_API_URL": fake_slack.api_url, "MTURK_ENDPOINT_URL": fake_mturk.url}

    lines = check_lines(result := run_app(workdir, where, "--check"))
    assert result.returncode == 0 and list(lines) == SOCKET_MODE_CHECKS, result.stdout
    assert f"read {workdir / '.env'}" in lines["Settings"]
    process = AppProcess(where, workdir)
    try:
        # The gateway sees the connection a moment before the app logs it.
        process.start(ready=lambda: gateway.connected and "connected to Slack over Socket Mode" in process.log())
        assert process.terminate() == 0
    finally:
        process.stop()
    log = process.log()
    assert "Slack Socket Mode" in log
    assert "WARNING" not in log and "Traceback" not in log, log


def test_the_environment_wins_over_env_in_the_working_directory(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path
) -> None:
    (workdir / ".env").write_text("SLACK_BOT_TOKEN=xoxb-...\nAPPROVAL_CHANNEL=C0FROMDOTENV\nMTURK_MAX_TPS=7\n")
    result = run_app(workdir, http_env(fake_slack, fake_mturk), "--check")
    assert result.returncode == 0, result.stdout
    assert [call.args["channel"] for call in fake_slack.calls_to("conversations.history")] == [CHANNEL]


# ---------------------------------------------------------------------------------------------- mis-settings


@pytest.mark.parametrize(
    ("overrides", "item", "expected"),
    [
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxb-..."},
            "Settings",
            "SLACK_BOT_TOKEN is still the example value from .env.example; paste the Bot User OAuth Token "
            "(xoxb-…) from OAuth & Permissions",
            id="example bot token",
        ),
        pytest.param(
            {"SLACK_APP_TOKEN": "xapp-..."},
            "Settings",
            "SLACK_APP_TOKEN is still the example value from .env.example; paste an app-level token (xapp-…)",
            id="example app token",
        ),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xapp-1-A0001-swapped", "SLACK_APP_TOKEN": "xoxb-test-token"},
            "Settings",
            "SLACK_BOT_TOKEN and SLACK_APP_TOKEN are swapped",
            id="swapped tokens",
        ),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxp-1-2-3-user"},
            "Settings",
            "SLACK_BOT_TOKEN holds a user token (xoxp-…); paste the Bot User OAuth Token (xoxb-…)",
            id="user token",
        ),
        pytest.param(
            {"SLACK_API_URL": "http://127.0.0.1:{closed}/api/"},
            "Slack bot token",
            "cannot reach Slack at http://127.0.0.1:{closed}/api/ (connection refused); check the network, "
            "any proxy (HTTPS_PROXY) and SLACK_API_URL",
            id="Slack refuses connections",
        ),
        pytest.param(
            {"SLACK_API_URL": "https://slack.invalid/api/"},
            "Slack bot token",
            "cannot reach Slack at https://slack.invalid/api/ (its host name does not resolve)",
            id="DNS failure",
        ),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxb-revoked-or-mistyped"},
            "Slack bot token",
            "Slack refused SLACK_BOT_TOKEN (invalid_auth); copy the Bot User OAuth Token (xoxb-…) again",
            id="refused bot token",
        ),
        pytest.param(
            {"SLACK_APP_TOKEN": "xapp-1-A0001-refused"},
            "Slack app token",
            "Slack refused SLACK_APP_TOKEN (invalid_auth); generate an app-level token with the "
            "connections:write scope under Basic Information → App-Level Tokens",
            id="refused app token",
        ),
        pytest.param(
            {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
            "MTurk",
            "No AWS credentials were found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
            id="no AWS credentials",
        ),
        pytest.param(
            {"AWS_SECRET_ACCESS_KEY": "not/the/secret/key/of/this/access/key/id"},
            "MTurk",
            "AWS rejected the credentials (InvalidSignatureException: The request signature we calculated does "
            "not match the signature you provided.). Check the AWS keys.",
            id="wrong AWS secret key",
        ),
        pytest.param(
            {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000001"},
            "MTurk",
            "AWS rejected the credentials (UnrecognizedClientException: The security token included in the "
            "request is invalid.)",
            id="unknown AWS access key",
        ),
        pytest.param(
            {"MTURK_ENDPOINT_URL": "http://127.0.0.1:{closed}"},
            "MTurk",
            'MTurk could not be reached (Could not connect to the endpoint URL: "http://127.0.0.1:{closed}/")',
            id="MTurk unreachable",
        ),
        pytest.param(
            {"DATABASE_URL": "sqlite:///{tmp}/no-such-directory/grant-qual.db"},
            "Database",
            "the directory of {tmp}/no-such-directory/grant-qual.db does not exist; create it or change DATABASE_URL",
            id="database directory missing",
        ),
    ],
)
def test_a_mis_setting_ends_in_one_line_at_start_and_in_check(
    overrides: dict[str, str],
    item: str,
    expected: str,
    fake_slack: FakeSlack,
    fake_mturk: FakeMTurk,
    gateway: FakeSocketMode,
    workdir: Path,
    tmp_path: Path,
) -> None:
    closed = free_port()
    filled = {name: value.format(closed=closed, tmp=tmp_path) for name, value in overrides.items()}
    expected = expected.format(closed=closed, tmp=tmp_path)
    env = socket_env(fake_slack, fake_mturk, **filled)

    line = start_failure(run_app(workdir, env))
    assert line.startswith(f"grant-qual cannot start: ✗ {item}: {expected}"), line
    assert database_files(workdir) == []

    result = run_app(workdir, env, "--check")
    lines = check_lines(result)
    assert result.returncode == 1
    assert lines[item].startswith(f"✗ {expected}"), lines[item]
    assert database_files(workdir) == []
    for value in filled.values():  # what was pasted is named, never echoed
        if "://" not in value and value not in ("", "xoxb-...", "xapp-..."):
            assert value not in result.stdout + line


def test_a_channel_the_bot_is_not_in_says_how_to_invite_it(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path
) -> None:
    fake_slack.channels_without_bot.add(CHANNEL)
    env = http_env(fake_slack, fake_mturk)
    expected = (
        f"✗ Approvals channel: Slack refused to read {CHANNEL} (not_in_channel); the bot is not a member: "
        "open the channel in Slack and type /invite @grantbot"
    )
    assert start_failure(run_app(workdir, env)) == f"grant-qual cannot start: {expected}"
    result = run_app(workdir, env, "--check")
    assert result.returncode == 1
    assert f"✗ Approvals channel: {check_lines(result)['Approvals channel'].removeprefix('✗ ')}" == expected


def test_a_missing_channel_and_a_missing_scope_are_named(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path
) -> None:
    fake_slack.missing_channels.add(CHANNEL)
    assert fake_slack.bot_scopes is not None
    fake_slack.bot_scopes -= {"files:write", "im:history"}
    result = run_app(workdir, http_env(fake_slack, fake_mturk), "--check")
    lines = check_lines(result)
    assert result.returncode == 1
    assert lines["Slack scopes"].startswith("✗ the bot token lacks files:write, im:history; add them")
    assert lines["Approvals channel"].startswith(
        f"✗ Slack refused to read {CHANNEL} (channel_not_found); no such channel, or a private one the bot is not in"
    )
    assert lines["MTurk"].startswith("✓") and lines["Database"].startswith("✓")


def test_slack_answering_503_is_a_line_too(fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path) -> None:
    fake_slack.unavailable = True
    line = start_failure(run_app(workdir, http_env(fake_slack, fake_mturk)))
    assert line.startswith(
        f"grant-qual cannot start: ✗ Slack bot token: Slack answered HTTP 503 at {fake_slack.api_url}"
    )


def test_a_brief_slack_hiccup_at_start_is_ridden_out(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, workdir: Path
) -> None:
    """A replica restarting while Slack answers a few 503s and a 429 (the soak test's faults) still starts."""
    fake_slack.fail_next("auth.test", status=503)
    fake_slack.fail_next("conversations.history", status=429, retry_after=1)
    result = run_app(workdir, http_env(fake_slack, fake_mturk), "--check")
    assert result.returncode == 0, result.stdout


def test_without_any_settings_check_says_what_is_missing(workdir: Path) -> None:
    result = run_app(workdir, {}, "--check")
    assert result.returncode == 1
    assert check_lines(result) == {
        "Settings": "✗ missing setting(s) SLACK_BOT_TOKEN, GRANT_REQUESTERS, GRANT_APPROVERS, APPROVAL_CHANNEL and "
        "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP) (see the Settings section of README.md)"
    }


def test_a_socket_mode_connection_refused_after_the_check_ends_in_one_line(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check opened a connection a moment ago; if Slack refuses the next one, the start still says one line."""
    from app import build, serve_socket_mode
    from bot.config import load_settings

    env = app_environment(fake_slack, fake_mturk, database_url, SLACK_APP_TOKEN="xapp-1-A0001-revoked-since")
    grant_qual = build(load_settings(env))
    try:
        assert serve_socket_mode(grant_qual) == 2
    finally:
        grant_qual.shutdown()
        grant_qual.store.engine.dispose()
    captured = capsys.readouterr()
    assert captured.err == "grant-qual cannot start: Slack refused the Socket Mode connection (invalid_auth)\n"
    assert "Traceback" not in captured.out + captured.err


def test_the_database_item_names_where_the_schema_stands_and_creates_nothing(tmp_path: Path) -> None:
    from sqlalchemy import text

    from bot.selfcheck import database_check
    from bot.store import GrantStore, create_database_engine

    def check(url: str) -> str:
        store = GrantStore(create_database_engine(url))
        try:
            return database_check(store, url.replace(":s3cret@", ":***@")).run().line()
        finally:
            store.engine.dispose()

    path = tmp_path / "grant-qual.db"
    url = f"sqlite:///{path}"
    assert check(url) == f"✓ Database: {path} does not exist yet; start-up creates it"
    assert not path.exists()
    path.touch()
    assert check(url) == f"✓ Database: {url} is empty; start-up creates the tables"
    store = GrantStore(create_database_engine(url))
    store.upgrade_schema()
    head = store.schema_status().head
    assert check(url) == f"✓ Database: {url} is at the latest migration ({head})"
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert check(url) == f"✓ Database: {url} is at migration 0001; start-up upgrades it to {head}"
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.engine.dispose()
    assert check(url) == (
        f"✗ Database: {url} is at migration 9999, which this grant-qual does not have (a newer version upgraded "
        "it); run that version"
    )
    closed = free_port()
    line = check(f"postgresql://grantqual:s3cret@127.0.0.1:{closed}/grantqual")
    assert line.startswith(f"✗ Database: cannot open postgresql://grantqual:***@127.0.0.1:{closed}/grantqual (")
    assert line.endswith("); check DATABASE_URL and that the database is running") and "s3cret" not in line
