"""Undo, end to end: the button on a finished request's summary (approvers only, with a confirmation) makes a new
request that restores each worker the original changed to the state recorded before it ran; it is previewed and
approved like any request, linked both ways, made once however many clicks, and can itself be undone."""

from __future__ import annotations

import threading
from typing import Any

from bot.requests import GrantSpec, Operation, RequestState, WorkerTarget
from tests.conftest import APPROVER, APPROVER_2, CHANNEL, OUTSIDER, QUAL, QUAL_NAME, REQUESTER, RunningApp
from tests.slack_sender import message_text
from tests.test_revoke import approve_button

RAISED, NEW, KEPT, UNKNOWN = "ARAISE0000001", "ANEWBIE000001", "AKEPT00000001", "AUNKNOWN00001"


def summary_button(summary: dict[str, Any], action: str) -> dict[str, Any] | None:
    return next(
        (e for b in summary["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action),
        None,
    )


def click_undo(app: RunningApp, user: str, request_id: int = 1, **options: Any) -> Any:
    summary = app.summary(request_id)
    return app.sender.click(
        user, "undo_request", str(request_id), message=summary, message_ts=summary["ts"], channel_id=CHANNEL, **options
    )


def grant_and_finish(app: RunningApp) -> None:
    """Request #1 raises one worker from 50 to 80, gives one their first score, skips one who holds 80, and fails
    for one MTurk does not know."""
    app.mturk.preset_grant(QUAL, RAISED, 50)
    app.mturk.preset_grant(QUAL, KEPT, 80)
    app.mturk.unknown_workers.add(UNKNOWN)
    app.request(f"{QUAL} {RAISED} {NEW} {KEPT} {UNKNOWN} value=80")
    app.approval_message()
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.FAILED


def test_undo_restores_previous_scores_and_revokes_new_holders_after_its_own_approval(app: RunningApp) -> None:
    grant_and_finish(app)
    button = summary_button(app.summary(), "undo_request")
    assert button is not None and button["confirm"]["title"]["text"] == "Undo this request?"
    assert "*SANDBOX*" in button["confirm"]["text"]["text"]
    assert summary_button(app.summary(), "retry_failed") is not None  # beside Retry failed

    assert click_undo(app, APPROVER).status == 200
    undo = app.slack.wait_for(lambda: (r := app.grant_qual.store.get(2)) and r.message_ts and r)
    assert undo.undo_of == 1 and undo.requester_id == APPROVER and undo.reason == "Undo of request #1"
    assert app.grant_qual.store.get(1).undone_by == 2  # type: ignore[union-attr]
    message = app.approval_message(2)
    text = message_text(message)
    assert "*Undo of request #1* (<https://" in text  # linked to the original
    assert "*GRANT AND REVOKE* — revokes the qualification from 1 worker(s) and grants it to 1" in text
    assert f"1 changed (e.g. `{RAISED}` 80 → 50)" in text and f"1 revoke (e.g. `{NEW}` revoke (had 80))" in text
    assert KEPT not in text and UNKNOWN not in text  # skipped and failed workers were not changed: not undone
    assert "*GRANT AND REVOKE*" in approve_button(message)["confirm"]["text"]["text"]
    # The original's thread says so, and its summary's Undo gives way to the undo's number.
    app.slack.wait_for(lambda: [m for m in app.thread(1) if "Undo requested as #2" in m["text"]])
    old = app.slack.wait_for(
        lambda: (m := app.slack.message(CHANNEL, app.summary()["ts"])) and "as request #2" in message_text(m) and m
    )
    assert summary_button(old, "undo_request") is None and summary_button(old, "retry_failed") is not None

    # The clicker asked for it, so another approver decides.
    app.click(APPROVER, "approve_request", 2, response_key="self")
    assert "your own request" in app.slack.wait_for(lambda: app.slack.responses_for("self"))[0]["text"]
    app.click(APPROVER_2, "approve_request", 2)
    assert app.wait_final(2).state is RequestState.DONE
    assert app.mturk.holds(QUAL, RAISED) == 50 and app.mturk.holds(QUAL, NEW) is None
    assert app.mturk.holds(QUAL, KEPT) == 80
    assert app.mturk.revoke_counts() == {NEW: 1}
    assert [g.integer_value for g in app.mturk.grants_for(RAISED)] == [80, 50]
    assert not app.mturk.grants_for(RAISED)[-1].send_notification  # putting back is no news for the worker
    summary = message_text(app.summary(2))
    assert "Granted" in summary and "revoked it from all 1 worker(s)" in summary
    assert summary_button(app.summary(2), "undo_request") is not None  # an undo can itself be undone


def test_undo_is_made_once_however_many_clicks(app: RunningApp) -> None:
    grant_and_finish(app)
    clicks = [threading.Thread(target=click_undo, args=(app, who)) for who in (APPROVER, APPROVER, APPROVER_2)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    app.approval_message(2)
    click_undo(app, APPROVER_2, response_key="again")
    answer = app.slack.wait_for(lambda: app.slack.responses_for("again"))[0]["text"]
    assert "Request #1 was already undone as #2" in answer and "Nothing changed" in answer
    assert [r.id for r in app.grant_qual.store.requests()] == [1, 2]
    assert len([m for m in app.thread(1) if "Undo requested as" in m["text"]]) == 1


def test_only_approvers_and_only_from_the_summary(app: RunningApp) -> None:
    grant_and_finish(app)
    for who in (REQUESTER, OUTSIDER):
        click_undo(app, who, response_key=who)
        assert "Only approvers" in app.slack.wait_for(lambda w=who: app.slack.responses_for(w))[0]["text"]
    message = app.approval_message()
    app.sender.click(
        APPROVER, "undo_request", "1", message=message, message_ts=message["ts"], channel_id=CHANNEL, response_key="x"
    )
    assert "not on request #1's message" in app.slack.wait_for(lambda: app.slack.responses_for("x"))[0]["text"]
    assert app.grant_qual.store.get(2) is None and app.grant_qual.store.get(1).undone_by is None  # type: ignore[union-attr]


def test_undo_of_a_revoke_grants_the_previous_score_again(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, RAISED, 70)
    app.request(f'revoke "{QUAL_NAME}" {RAISED} {NEW} message=Study closed')
    app.approval_message()
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert app.mturk.holds(QUAL, RAISED) is None
    click_undo(app, APPROVER_2)
    text = message_text(app.approval_message(2))
    assert "Qualification grant request #2" in text and f"`{RAISED}` revoked (70) → 70" in text
    app.click(APPROVER, "approve_request", 2)
    assert app.wait_final(2).state is RequestState.DONE
    assert app.mturk.holds(QUAL, RAISED) == 70 and app.mturk.holds(QUAL, NEW) is None


def test_a_request_that_changed_nobody_has_no_undo(app: RunningApp) -> None:
    app.mturk.preset_grant(QUAL, KEPT, 80)
    app.request(f"{QUAL} {KEPT} value=80")
    app.approval_message()
    app.click(APPROVER, "approve_request")
    assert app.wait_final().state is RequestState.DONE
    assert summary_button(app.summary(), "undo_request") is None


def test_the_store_marks_the_original_undone_once(app: RunningApp) -> None:
    grant_and_finish(app)
    store = app.grant_qual.store
    spec = GrantSpec(QUAL, (WorkerTarget(NEW, None, Operation.REVOKE),), False, "Undo of request #1", undo_of=1)
    made = []
    barrier = threading.Barrier(4)

    def undo() -> None:
        barrier.wait()
        made.append(store.create_undo(spec, requester_id=APPROVER, mturk_env="sandbox", qualification_name=None))

    threads = [threading.Thread(target=undo) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in made if r is not None]
    assert len(won) == 1 and store.get(1).undone_by == won[0].id  # type: ignore[union-attr]
    assert [r.id for r in store.requests()] == [1, won[0].id]  # the losers stored nothing
