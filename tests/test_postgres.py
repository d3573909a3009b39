"""The same flow on PostgreSQL (runs when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import threading

from bot.requests import RequestState
from tests.conftest import APPROVER, APPROVER_2, QUAL, REQUESTER, WORKERS, start_app
from tests.fakes import FakeMTurk, FakeSlack


def test_grant_on_postgres_survives_restart_and_double_clicks(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str
) -> None:
    app = start_app(fake_slack, fake_mturk, postgres_url)
    try:
        app.request(f"{QUAL} {' '.join(WORKERS)} value=3")
        app.approval_message()
        clicks = [
            threading.Thread(target=app.click, args=(who, "approve_request")) for who in [APPROVER, APPROVER_2] * 3
        ]
        for click in clicks:
            click.start()
        for click in clicks:
            click.join()
        assert app.wait_final().state is RequestState.DONE
    finally:
        app.stop()
    again = start_app(fake_slack, fake_mturk, postgres_url)
    try:
        request = again.grant_qual.store.get(1)
        assert request is not None and request.state is RequestState.DONE and request.requester_id == REQUESTER
        assert [o.status.value for o in again.grant_qual.store.outcomes(1)] == ["granted"] * 3
    finally:
        again.stop()
    assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}
    assert len(fake_slack.dms_to(REQUESTER)) == 1
