"""Fixtures: the fakes on loopback, and the real app served over HTTP by waitress, pointed at them."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from app import GrantQual, build, http_server
from bot.config import load_settings
from bot.store import GrantStore, create_database_engine, now
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackSender

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token"
REQUESTER, APPROVER, APPROVER_2, OUTSIDER = "U0REQUEST", "U0APPROVE", "U0APPROVE2", "U0OUTSIDE"
CHANNEL = "C0APPROVALS"
QUAL = "3QUALTYPE00000000001"
QUAL_NAME = "Passed screener"
WORKERS = ["A1WORKER0000001", "A1WORKER0000002", "A1WORKER0000003"]


# The app's own settings (see README.md, Settings): a test never takes them from the developer's machine.
SETTING_PREFIXES = ("SLACK_", "GRANT_", "MTURK_", "AWS_")
SETTING_NAMES = ("APPROVAL_CHANNEL", "ALLOW_SELF_APPROVAL", "DATABASE_URL", "PORT", "MAX_WORKERS_PER_REQUEST")
SETTING_NAMES += ("APPROVALS_REQUIRED", "PRODUCTION_APPROVALS_REQUIRED", "REJECT_REASON_REQUIRED")
SETTING_NAMES += ("LOG_FORMAT", "METRICS_PORT")  # the operator's


@pytest.fixture(autouse=True)
def no_settings_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's settings are removed from the environment, so only what a test sets reaches the app."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES) or name in SETTING_NAMES:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_settings_from_the_machine: None) -> None:
    """boto3's standard chain finds the fake's keys in the environment, and nothing from the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FakeMTurk.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FakeMTurk.SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MTURK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_mturk() -> Iterator[FakeMTurk]:
    with FakeMTurk() as fake:
        fake.add_type(QUAL, QUAL_NAME)
        yield fake


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN) as fake:
        fake.bot_scopes = manifest_bot_scopes()  # the app gets exactly the scopes its manifest asks for
        yield fake


def load_manifest() -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).resolve().parent.parent / "manifest.yml").read_text())


def manifest_bot_scopes() -> set[str]:
    return set(load_manifest()["oauth_config"]["scopes"]["bot"])


def app_environment(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str, **overrides: str
) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "GRANT_REQUESTERS": f"{REQUESTER},{APPROVER}",
        "GRANT_APPROVERS": f"{APPROVER},{APPROVER_2}",
        "APPROVAL_CHANNEL": CHANNEL,
        "MTURK_ENDPOINT_URL": fake_mturk.url,
        "DATABASE_URL": database_url,
    }
    env.update(overrides)
    return env


@dataclass
class RunningApp:
    grant_qual: GrantQual
    sender: SlackSender
    slack: FakeSlack
    mturk: FakeMTurk
    url: str
    _stop: Callable[[], None]

    def stop(self) -> None:
        self._stop()

    # Conveniences that read like what a user does.
    def request(self, text: str, user: str = REQUESTER, **options: Any) -> Any:
        return self.sender.command(user, text, **options)

    def approval_message(self, request_id: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            request = self.grant_qual.store.get(request_id)
            if request is None or request.message_ts is None:
                return None
            return self.slack.message(CHANNEL, request.message_ts)

        return self.slack.wait_for(find, timeout=timeout)

    def click(self, user: str, action: str, request_id: int = 1, **options: Any) -> Any:
        message = self.approval_message(request_id)
        return self.sender.click(user, action, str(request_id), message=message, channel_id=CHANNEL, **options)

    def thread(self, request_id: int = 1) -> list[dict[str, Any]]:
        request = self.grant_qual.store.get(request_id)
        assert request is not None and request.message_ts is not None
        return self.slack.thread_replies(CHANNEL, request.message_ts)

    def posts(self, kind: str, request_id: int = 1) -> list[dict[str, Any]]:
        """Thread replies the app posted for one kind of event (finished, rejected, approved: progress)."""
        return [m for m in self.thread(request_id) if posted_for(m) == kind]

    def summary(self, request_id: int = 1) -> dict[str, Any]:
        """The (only) result summary in the request's thread."""
        (summary,) = self.posts("finished", request_id)
        return summary

    def wait_final(self, request_id: int = 1, timeout: float = 20.0) -> Any:
        """The request once it is final and its final post (result or rejection) is in the thread."""

        def final() -> Any:
            request = self.grant_qual.store.get(request_id)
            if not request or not request.state.is_final:
                return None
            kind = "rejected" if request.state.value == "rejected" else "finished"
            return request if self.posts(kind, request_id) else None

        return self.slack.wait_for(final, timeout=timeout)

    def reject(self, user: str, reason: str = "", request_id: int = 1, **options: Any) -> Any:
        """Click Reject, then submit the form the app opens with `reason`; the submission's answer.

        Answers a click that opens no form (a refusal) with None; `options` go with the click (response_key).
        """
        opened = len(self.slack.calls_to("views.open"))
        self.click(user, "reject_request", request_id, trigger_id=self.slack.new_trigger_id(), **options)
        try:
            call = self.slack.wait_for(lambda: self.slack.calls_to("views.open")[opened:], timeout=2)[0]
        except AssertionError:
            return None
        return self.sender.submit_view(
            user,
            reject_reason_values(reason),
            private_metadata=call.args["view"]["private_metadata"],
            callback_id="reject_request_modal",
        )


def reject_reason_values(reason: str) -> dict[str, Any]:
    """Reject's form's view.state.values as Slack sends them."""
    return {"reject_reason": {"value": {"type": "plain_text_input", "value": reason or None}}}


def posted_for(message: dict[str, Any]) -> str | None:
    """Which event kind a message was posted for, from the metadata the app attaches."""
    return ((message.get("metadata") or {}).get("event_payload") or {}).get("kind")


def start_app(
    fake_slack: FakeSlack,
    fake_mturk: FakeMTurk,
    database_url: str,
    *,
    clock: Callable[[], datetime] = now,
    **overrides: str,
) -> RunningApp:
    settings = load_settings(app_environment(fake_slack, fake_mturk, database_url, **overrides))
    grant_qual = build(settings, clock=clock)
    # In time, whatever the machine's load: the tests of the late answer set 0 (tests/test_modal_deadline.py).
    grant_qual.ack_deadline.seconds = 30.0
    grant_qual.start_background_work()
    server = http_server(grant_qual, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/slack/events"  # type: ignore[union-attr]

    def stop() -> None:
        stop_waitress(server, thread)
        grant_qual.shutdown()
        grant_qual.store.engine.dispose()

    sender = SlackSender(url, SIGNING_SECRET, fake_slack.response_url(""))
    return RunningApp(grant_qual, sender, fake_slack, fake_mturk, url, stop)


def stop_waitress(server: Any, thread: threading.Thread) -> None:
    """Close waitress from its own loop thread: closing its sockets from another thread races its poll()."""

    def close_everything() -> None:
        for dispatcher in list(server._map.values()):
            dispatcher.close()  # with nothing left to watch, the loop returns

    try:
        server.trigger.pull_trigger(close_everything)
    except OSError:
        # Rarely (twice in several full runs, after the test had passed; cause not found) the trigger's pipe
        # is already closed when a test stops the app. Nothing can wake the loop then: close it from here.
        close_everything()
    thread.join(10)
    server.task_dispatcher.shutdown()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'grant-qual.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the PostgreSQL of TEST_DATABASE_URL (skipped when it is not set)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_database_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database_url(request: pytest.FixtureRequest, database_url: str) -> str:
    """Each test twice: on SQLite, and on a fresh PostgreSQL schema (skipped without TEST_DATABASE_URL)."""
    if request.param == "sqlite":
        return database_url
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store_on_any_database(any_database_url: str) -> Iterator[GrantStore]:
    """A migrated GrantStore on SQLite, then on PostgreSQL."""
    store = GrantStore(create_database_engine(any_database_url))
    store.upgrade_schema()
    yield store
    store.engine.dispose()


@pytest.fixture
def app(fake_slack: FakeSlack, fake_mturk: FakeMTurk, database_url: str) -> Iterator[RunningApp]:
    running = start_app(fake_slack, fake_mturk, database_url)
    yield running
    running.stop()
