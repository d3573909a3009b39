"""The modal's file upload: MTurk's own exports, downloaded with the bot token, checked before anything posts."""

from __future__ import annotations

import json

from bot.requests import RequestState
from tests.conftest import APPROVER, OUTSIDER, QUAL, QUAL_NAME, REQUESTER, RunningApp
from tests.slack_sender import message_text, modal_values


def batch_results_csv(worker_ids: list[str]) -> bytes:
    header = "HITId,HITTypeId,Title,AssignmentId,WorkerId,AssignmentStatus,Answer.feedback\r\n"
    rows = [f'3H{i:018d},3T0,Survey,3A{i:018d},{w},Approved,"fine, thanks"\r\n' for i, w in enumerate(worker_ids)]
    return (header + "".join(rows)).encode()


def test_two_thousand_workers_from_a_batch_results_csv(app: RunningApp) -> None:
    ids = [f"A{i:013d}" for i in range(2000)]
    file = app.slack.host_file("F0BATCH", "Batch_123_batch_results.csv", batch_results_csv(ids + ids[:50]))
    metadata = json.dumps({"response_url": app.slack.response_url("upload")})
    reply = app.sender.submit_view(REQUESTER, modal_values(QUAL, value="3", files=[file]), private_metadata=metadata)
    assert reply.status == 200 and reply.body == ""
    text = message_text(app.approval_message())
    assert "Workers (2000)" in text and "and 1960 more" in text
    app.click(APPROVER, "approve_request")
    assert app.wait_final(timeout=60).state is RequestState.DONE
    assert app.mturk.grant_counts() == {w: 1 for w in ids}
    assert {g.integer_value for g in app.mturk.grants} == {3}
    assert "all 2000 worker(s)" in message_text(app.summary())


def test_requester_site_worker_file_gives_each_worker_its_own_score(app: RunningApp) -> None:
    content = (
        f'"Worker ID","UPDATE BlockStatus","BlockReason","CURRENT-{QUAL_NAME}","UPDATE-{QUAL_NAME}"\n'
        '"A1AAAAAAAAAAAA","","","","80"\n'
        '"A2BBBBBBBBBBBB","","","50",""\n'
        '"A3CCCCCCCCCCCC","","","","95"\n'
    ).encode()
    file = app.slack.host_file("F0WORKERS", "User_123_workers.csv", content)
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).body == ""
    assert "per worker (80, 95)" in message_text(app.approval_message())
    app.click(APPROVER, "approve_request")
    app.wait_final()
    assert {g.worker_id: g.integer_value for g in app.mturk.grants} == {"A1AAAAAAAAAAAA": 80, "A3CCCCCCCCCCCC": 95}


def test_worker_file_for_another_qualification_is_refused_inline(app: RunningApp) -> None:
    content = b'"Worker ID","CURRENT-Adult","UPDATE-Adult"\n"A1AAAAAAAAAAAA","","80"\n'
    file = app.slack.host_file("F0OTHERQUAL", "User_123_workers.csv", content)
    answer = app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).json()
    assert answer["response_action"] == "errors"
    error = answer["errors"]["workers_file"]
    assert "`UPDATE-Adult`" in error and f"not for “{QUAL_NAME}”" in error and f"`UPDATE-{QUAL_NAME}`" in error
    assert app.grant_qual.store.requests() == [] and app.slack.calls_to("chat.postMessage") == []


def test_bad_rows_come_back_inline_by_line_and_nothing_posts(app: RunningApp) -> None:
    content = b"WorkerId,Score\nA1GOOD00000001,1\nnot-a-worker,2\nA1GOOD00000002,3\na1lower,4\n"
    file = app.slack.host_file("F0BAD", "bad.csv", content)
    answer = app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).json()
    assert answer["response_action"] == "errors"
    error = answer["errors"]["workers_file"]
    assert "line 3" in error and "not-a-worker" in error and "line 5" in error and "a1lower" in error
    assert app.grant_qual.store.requests() == [] and app.slack.calls_to("chat.postMessage") == []


def test_file_is_downloaded_with_the_bot_token_and_outsiders_files_are_not(app: RunningApp) -> None:
    file = app.slack.host_file("F0LIST", "ids.txt", b"A1ONE000000001\nA1TWO000000002\n", filetype="text")
    outsider = app.sender.submit_view(OUTSIDER, modal_values(QUAL, files=[file])).json()
    assert "Only requesters can request" in outsider["errors"]["qualification_type"]
    assert app.slack.downloads == [] and not app.grant_qual.store.requests()
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).body == ""
    assert app.slack.downloads == ["F0LIST"]
    assert app.grant_qual.store.get(1).worker_count == 2  # type: ignore[union-attr]


def test_typed_ids_and_a_file_together_and_neither(app: RunningApp) -> None:
    file = app.slack.host_file("F0MIX", "ids.txt", b"A1ONE000000001\nA1TWO000000002\n", filetype="text")
    both = modal_values(QUAL, workers="A1TWO000000002 A1THREE0000003", files=[file])
    assert app.sender.submit_view(REQUESTER, both).body == ""
    assert app.grant_qual.store.get(1).worker_count == 3  # type: ignore[union-attr]
    neither = app.sender.submit_view(REQUESTER, modal_values(QUAL)).json()
    assert "at least one worker" in neither["errors"]["workers"]
