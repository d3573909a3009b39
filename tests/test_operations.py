"""The operator's routes over HTTP: /healthz and /metrics on the running app, beside Slack's /slack/events."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import SettingsError, load_settings
from bot.requests import DeliveryState, RequestState
from tests.conftest import (
    APPROVER,
    BOT_TOKEN,
    QUAL,
    REQUESTER,
    SIGNING_SECRET,
    WORKERS,
    RunningApp,
    start_app,
)
from tests.fakes import FakeMTurk, FakeSlack


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def base_url(app: RunningApp) -> str:
    return app.url.removesuffix("/slack/events")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and labels."""
    status, headers, body = http("GET", f"{url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_healthz_says_ok_while_the_database_answers(app: RunningApp) -> None:
    status, headers, body = http("GET", f"{base_url(app)}/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["Content-Type"] == "application/json"


@pytest.fixture
def app_on_movable_database(fake_slack: FakeSlack, fake_mturk: FakeMTurk, tmp_path: Path) -> Iterator[RunningApp]:
    """The app on a SQLite file in a folder of its own, which the test can take away and put back."""
    (tmp_path / "db").mkdir()
    running = start_app(fake_slack, fake_mturk, f"sqlite:///{tmp_path / 'db' / 'grant-qual.db'}")
    yield running
    if not (tmp_path / "db").exists():
        (tmp_path / "db-gone").rename(tmp_path / "db")
    running.stop()


def test_healthz_answers_503_while_the_database_is_gone(app_on_movable_database: RunningApp, tmp_path: Path) -> None:
    app = app_on_movable_database
    url = f"{base_url(app)}/healthz"
    assert http("GET", url)[0] == 200
    (tmp_path / "db").rename(tmp_path / "db-gone")  # the file can no longer be opened ...
    app.grant_qual.store.engine.dispose()  # ... and the pool's open connections are closed
    status, _, body = http("GET", url)
    assert (status, json.loads(body)) == (503, {"status": "unavailable", "database": "unreachable"})
    assert "sqlite" not in body and str(tmp_path) not in body
    metrics_status, _, metrics = http("GET", f"{base_url(app)}/metrics")  # still served, without the database's
    assert metrics_status == 200 and "grant_qual_mturk_rate_limit" in metrics and "grant_qual_requests" not in metrics
    (tmp_path / "db-gone").rename(tmp_path / "db")
    assert http("GET", url)[0] == 200


def test_metrics_after_a_grant_count_calls_states_and_acks(app: RunningApp) -> None:
    url = base_url(app)
    before = scrape(url)
    assert before[("grant_qual_requests", (("state", "done"),))] == 0
    assert before[("grant_qual_mturk_rate_limit", ())] == 200
    app.mturk.fail_next("ThrottlingException", worker_id=WORKERS[1])
    assert app.request(f"{QUAL} {' '.join(WORKERS)} value=5 reason=screened").status == 200
    assert app.click(APPROVER, "approve_request").status == 200
    assert app.wait_final().state is RequestState.DONE
    store = app.grant_qual.store
    app.slack.wait_for(lambda: all(e.delivery_state is DeliveryState.DELIVERED for e in store.events(1)))

    after = scrape(url)
    assert after[("grant_qual_requests", (("state", "done"),))] == 1
    assert after[("grant_qual_requests", (("state", "pending"),))] == 0
    assert after[("grant_qual_outbox_depth", ())] == 0
    assert after[("grant_qual_mturk_calls_total", (("kind", "grant"), ("outcome", "ok")))] == len(WORKERS)
    assert after[("grant_qual_mturk_calls_total", (("kind", "grant"), ("outcome", "throttled")))] == 1
    assert after[("grant_qual_mturk_throttles_total", ())] == 1
    assert after[("grant_qual_mturk_calls_total", (("kind", "read"), ("outcome", "ok")))] >= 1  # the preview
    assert after[("grant_qual_mturk_calls_in_flight", ())] == 0
    assert 1 <= after[("grant_qual_mturk_rate_limit", ())] <= 200
    acks = after[("grant_qual_slack_ack_seconds_count", (("kind", "http"),))]
    assert acks >= 2  # the command and the click at least; a refused request is no ack
    assert after[("grant_qual_slack_ack_seconds_bucket", (("kind", "http"), ("le", "+Inf")))] == acks

    _, _, body = http("GET", f"{url}/metrics")
    for private in [*WORKERS, REQUESTER, APPROVER, QUAL, BOT_TOKEN, SIGNING_SECRET, FakeMTurk.SECRET_KEY]:
        assert private not in body


def test_operations_routes_take_get_only_and_slack_events_still_need_a_signature(app: RunningApp) -> None:
    url = base_url(app)
    for path in ("/metrics", "/healthz"):
        status, headers, _ = http("POST", f"{url}{path}", b"x=1")
        assert (status, headers["Allow"]) == (405, "GET")
    assert http("GET", f"{url}/metrics/")[0] == 404  # only the exact paths; the rest is Slack's gate
    assert http("POST", f"{url}/slack/events", b"command=%2Fgrant-qual&text=help")[0] == 401
    assert app.request("help").status == 200  # signed: through to Bolt as before


SETTINGS = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "GRANT_REQUESTERS": "U01",
    "GRANT_APPROVERS": "U03",
    "APPROVAL_CHANNEL": "C01",
}


def test_log_format_and_metrics_port_settings() -> None:
    defaults = load_settings(SETTINGS)
    assert (defaults.log_format, defaults.metrics_port) == ("text", None)
    chosen = load_settings({**SETTINGS, "LOG_FORMAT": "JSON", "METRICS_PORT": "9100"})
    assert (chosen.log_format, chosen.metrics_port) == ("json", 9100)
    socket_mode = load_settings({**SETTINGS, "SLACK_APP_TOKEN": "xapp-1", "PORT": "9100", "METRICS_PORT": "9100"})
    assert socket_mode.metrics_port == 9100  # Socket Mode serves nothing on PORT


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT must be 'text' or 'json', not 'yaml'"),
        ({"METRICS_PORT": "metrics"}, "METRICS_PORT must be a whole number"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT must be between 1 and 65535"),
        ({"METRICS_PORT": "3000"}, "METRICS_PORT (3000) is PORT"),
    ],
)
def test_malformed_operations_settings_are_named(change: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**SETTINGS, **change})
    assert fragment in str(caught.value) and "README" in str(caught.value)
