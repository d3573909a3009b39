"""Look-ups in Slack (status, history, mine/list, help), answered only to whoever asked, from the database.

Through signed commands to the real app, then the store's queries on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from typing import Any

import pytest

from bot.lookups import Lookups
from bot.policy import AccessPolicy
from bot.requests import (
    Field,
    GrantSpec,
    HistoryLookup,
    InvalidRequest,
    MineLookup,
    RequestState,
    StatusLookup,
    WorkerOutcome,
    WorkerStatus,
    WorkerTarget,
    is_lookup,
    parse_command_text,
)
from bot.service import NotAllowed
from bot.store import GrantStore
from tests.block_kit import assert_valid_block_kit, text_objects, valid_block_kit
from tests.conftest import APPROVER, APPROVER_2, OUTSIDER, QUAL, QUAL_NAME, REQUESTER, WORKERS, RunningApp
from tests.test_hostile_input import HOSTILE_NAME, HOSTILE_QUAL, assert_nothing_typed_is_live
from tests.test_hostile_input import decide as hostile_decide

pytestmark = pytest.mark.usefixtures("valid_block_kit")
__all__ = ["valid_block_kit"]  # a fixture, used through pytestmark
_asked = itertools.count(1)
LINK = re.compile(r"<https://fake\.slack\.com/archives/C0APPROVALS/p\d+\|")


def ask(app: RunningApp, text: str, user: str = REQUESTER) -> dict[str, Any]:
    """Send `/grant-qual <text>` and return the one answer posted to its response URL."""
    key = f"ask-{next(_asked)}"
    assert app.request(text, user=user, response_key=key).status == 200
    (answer,) = app.slack.wait_for(lambda: app.slack.responses_for(key))
    assert answer["response_type"] == "ephemeral"
    return answer


def shown(answer: dict[str, Any]) -> str:
    """What the reader sees: the blocks when there are any (the text is then the notification), else the text."""
    if not answer.get("blocks"):
        return str(answer["text"])
    return "\n".join(obj["text"] for _, obj in text_objects(answer["blocks"]))


def make_request(app: RunningApp, text: str, request_id: int, user: str = REQUESTER) -> None:
    app.request(text, user=user)
    app.approval_message(request_id)


def decide(app: RunningApp, request_id: int, action: str) -> None:
    if action == "reject_request":
        app.reject(APPROVER, request_id=request_id)  # Reject asks for a reason first
    else:
        app.click(APPROVER, action, request_id)
    app.wait_final(request_id)


def test_status_says_where_a_request_stands_who_asked_and_decided_its_counts_and_links_it(app: RunningApp) -> None:
    make_request(app, f"{QUAL} {' '.join(WORKERS)} value=7", 1)
    pending = shown(ask(app, "status 1"))
    assert "[SANDBOX] *Request #1* — :hourglass: waiting for a decision" in pending
    assert f"*Requested by* <@{REQUESTER}> <!date^" in pending
    assert "Approved by" not in pending and "0 granted · 0 failed · 3 pending" in pending

    app.mturk.unknown_workers.add(WORKERS[2])
    decide(app, 1, "approve_request")
    answer = ask(app, "status #1", user=APPROVER_2)  # an approver who may not request may look up
    text = shown(answer)
    assert "[SANDBOX] *Request #1* — :warning: finished, some workers failed" in text
    assert f"`{QUAL}` {QUAL_NAME}" in text
    assert f"*Approved by* <@{APPROVER}> <!date^" in text and "*Finished* <!date^" in text
    assert "*Workers (3)* 2 granted · 1 failed · 0 pending" in text
    assert LINK.search(text) and "Open the request's message" in text
    assert answer["text"].startswith("[SANDBOX] Request #1: failed")


def test_status_of_a_rejected_request_names_who_rejected_it(app: RunningApp) -> None:
    make_request(app, f"{QUAL} {WORKERS[0]}", 1)
    decide(app, 1, "reject_request")
    text = shown(ask(app, "Status 1"))
    assert ":no_entry: rejected" in text and f"*Rejected by* <@{APPROVER}>" in text
    assert "Finished" not in text and "0 granted · 0 failed · 1 pending" in text


def test_history_lists_every_request_that_named_the_worker_newest_first_with_its_outcome(app: RunningApp) -> None:
    worker = WORKERS[0]
    make_request(app, f"{QUAL} {worker} {WORKERS[1]} value=90", 1)
    decide(app, 1, "approve_request")
    make_request(app, f"{QUAL} {worker}", 2)
    decide(app, 2, "reject_request")
    make_request(app, f"{QUAL} {WORKERS[1]}", 3)  # does not name the worker
    app.mturk.unknown_workers.add(worker)
    make_request(app, f"{QUAL} {worker} value=5", 4)
    decide(app, 4, "approve_request")
    make_request(app, f"{QUAL} {worker} value=6", 5, user=APPROVER)

    answer = ask(app, f"history {worker}", user=APPROVER_2)
    sections = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    assert sections[0] == f"*Requests that named `{worker}`* (4, newest first)"
    numbers = [int(m) for s in sections[1:] for m in re.findall(r"\|#(\d+)>", s)]
    assert numbers == [5, 4, 2, 1]
    five, four, two, one = sections[1:]
    assert all(s.startswith("[SANDBOX] <https://fake.slack.com/archives/") for s in sections[1:])
    assert "(value 6)" in five and f"<@{APPROVER}>" in five and "waiting for a decision" in five
    assert "(value 5)" in four and ':x: failed: The value "' in four and "is not valid for the parameter" in four
    assert f"rejected by <@{APPROVER}>" in two
    assert "(value 90)" in one and ":white_check_mark: granted" in one and f"`{QUAL}` {QUAL_NAME}" in one
    assert "older" not in shown(answer)

    nobody = ask(app, "history A9NOBODY0000001")
    assert shown(nobody) == "No request has named `A9NOBODY0000001`."


def test_mine_lists_the_users_requests_and_for_approvers_the_pending_ones(app: RunningApp) -> None:
    make_request(app, f"{QUAL} {WORKERS[0]}", 1)
    decide(app, 1, "approve_request")
    make_request(app, f"{QUAL} {WORKERS[1]} {WORKERS[2]}", 2)
    make_request(app, f"{QUAL} {WORKERS[2]}", 3, user=APPROVER)

    mine = ask(app, "mine")
    text = shown(mine)
    assert "*Your requests* (newest first)" in text and "Waiting for a decision" not in text  # not an approver
    lines = [b["text"]["text"] for b in mine["blocks"] if b["type"] == "section"][1:]
    assert [re.findall(r"\|#(\d+)>", line) for line in lines] == [["2"], ["1"]]
    assert ":hourglass: waiting for a decision · 2 worker(s): 0 granted · 0 failed · 2 pending" in lines[0]
    assert ":white_check_mark: done · 1 worker(s): 1 granted · 0 failed · 0 pending" in lines[1]
    assert all(line.startswith("[SANDBOX] ") and "<!date^" in line for line in lines)

    approver = shown(ask(app, "list", user=APPROVER))
    mine_part, waiting = approver.split("*Waiting for a decision* (oldest first)")
    assert re.findall(r"\|#(\d+)>", mine_part) == ["3"]
    assert re.findall(r"\|#(\d+)>", waiting) == ["2", "3"]
    assert f"requested by <@{REQUESTER}>" in waiting

    empty = shown(ask(app, "mine", user=APPROVER_2))
    assert "You have not requested anything yet." in empty and "#2" in empty


def test_long_answers_show_the_newest_and_count_the_rest(app: RunningApp) -> None:
    store = app.grant_qual.store
    worker = WORKERS[0]
    for _ in range(25):
        spec = GrantSpec(QUAL, (WorkerTarget(worker, 1),), True, "")
        store.create_request(spec, requester_id=REQUESTER, mturk_env="sandbox", qualification_name="x" * 300)
    history = ask(app, f"history {worker}")
    assert len(history["blocks"]) == 22  # heading, 20 requests, the count of older ones
    assert "… and 5 older." in shown(history)
    assert re.findall(r"#(\d+) ", shown(history))[:2] == ["25", "24"]
    assert "Its message" not in shown(history)  # never posted, so not linked, and not claimed to be
    mine = ask(app, "mine", user=APPROVER)
    assert "… and 5 more." in shown(mine)
    waiting = shown(mine).split("Waiting for a decision")[1]
    assert re.findall(r"#(\d+) ", waiting)[:2] == ["1", "2"]
    mine = ask(app, "mine")
    assert "… and 15 older." in shown(mine) and "#25 " in shown(mine) and "#15 " not in shown(mine)
    status = shown(ask(app, "status 3"))
    assert "Its message is not posted in the approvals channel yet." in status
    assert_valid_block_kit(app.slack)


def test_bad_input_gets_a_clear_answer_and_changes_nothing(app: RunningApp) -> None:
    answers = {
        "status 12": "Request #12 does not exist.",
        "status 99999999999999": "Request #99999999999999 does not exist.",
        "status": "Give one request number: `/grant-qual status 12`.",
        "status twelve": "Give one request number",
        "status 1 2": "Give one request number",
        "history": "Give one worker ID",
        "history a1lower": "Not MTurk worker IDs: `a1lower`",
        "history <!channel>": "Not MTurk worker IDs: `&lt;!channel&gt;`",
        "mine please": "`mine` takes nothing after it",
    }
    for text, expected in answers.items():
        assert expected in ask(app, text)["text"], text
    assert app.grant_qual.store.requests() == []
    assert app.slack.calls_to("chat.postMessage") == []
    assert app.mturk.calls("ListQualificationTypes") == app.mturk.calls("GetQualificationType") == []


def test_outsiders_may_not_look_anything_up(app: RunningApp) -> None:
    make_request(app, f"{QUAL} {WORKERS[0]}", 1)
    for text in ("status 1", f"history {WORKERS[0]}", "mine", "list", "help", "status nonsense"):
        answer = ask(app, text, user=OUTSIDER)
        assert answer["text"] == (
            ":no_entry: Only requesters and approvers can look things up; to become one, ask <@U0APPROVE> or "
            f"<@U0APPROVE2>. Your member ID is {OUTSIDER}."
        )
        assert "blocks" not in answer


def test_names_and_mturk_words_in_answers_cannot_ping_link_or_format(app: RunningApp) -> None:
    app.mturk.add_type(HOSTILE_QUAL, HOSTILE_NAME)
    app.mturk.unknown_workers.add(WORKERS[2])
    make_request(app, f"{HOSTILE_QUAL} {' '.join(WORKERS)}", 1)
    hostile_decide(app, "approve_request", 1)  # by APPROVER_2: the app itself never mentions U0APPROVE here
    make_request(app, f"{HOSTILE_QUAL} {WORKERS[2]}", 2)
    answers = [ask(app, text) for text in ("status 1", "status 2", f"history {WORKERS[2]}", "mine")]
    answers.append(ask(app, "list", user=APPROVER_2))
    assert all("R&amp;D &lt;!channel&gt;" in shown(answer) for answer in answers)
    assert_nothing_typed_is_live(app)


def test_help_lists_every_command_and_approvers_may_read_it(app: RunningApp) -> None:
    for user in (REQUESTER, APPROVER_2):
        text = ask(app, "help", user=user)["text"]
        assert "/grant-qual &lt;QUALIFICATION_TYPE_ID&gt; &lt;WORKER_ID&gt;" in text
        for command in ("status 12", "history A1B2C3D4E5F6G7", "mine", "help"):
            assert f"`/grant-qual {command}" in text


def test_a_capitalised_word_is_a_qualification_type_not_a_look_up(app: RunningApp) -> None:
    """ "STATUS" could be a qualification type ID, so it is read as one: this account has no such type."""
    answer = ask(app, f"STATUS {WORKERS[0]}")
    assert "`STATUS` is not a qualification type created by this requester account" in answer["text"]


def test_look_up_words_and_their_arguments() -> None:
    def parse(text: str) -> object:
        return parse_command_text(text, max_workers=10)

    assert parse("status 12") == parse("  Status\t#12 ") == StatusLookup(12)
    assert parse("history A1B2C3D4E5F6G7") == HistoryLookup("A1B2C3D4E5F6G7")
    assert parse("mine") == parse("list") == parse("LiSt") == MineLookup()
    assert is_lookup("mine") and is_lookup("status\n3") and not is_lookup("statuses 3") and not is_lookup("")
    for capitals in ("STATUS 12", "MINE", "LIST A1B2C3"):  # could be qualification type IDs: read as requests
        assert not is_lookup(capitals)
    with pytest.raises(InvalidRequest):
        parse("LIST")  # a qualification type and no workers
    for bad in ("status #", "status -1", "status 1.5", "history A1B2 A1B3", "list all"):
        with pytest.raises(InvalidRequest) as raised:
            parse(bad)
        assert set(raised.value.errors) == {Field.COMMAND}


# The store's look-up queries, on SQLite and PostgreSQL.


@pytest.fixture
def store(store_on_any_database: GrantStore) -> GrantStore:
    return store_on_any_database


def add(store: GrantStore, requester: str, *workers: str) -> int:
    spec = GrantSpec(QUAL, tuple(WorkerTarget(w, i) for i, w in enumerate(workers)), True, "")
    return store.create_request(spec, requester_id=requester, mturk_env="sandbox", qualification_name=None).id


def test_store_lookups(store: GrantStore) -> None:
    first = add(store, REQUESTER, "A1AAA", "A1BBB")
    second = add(store, APPROVER, "A1BBB", "A1CCC")
    third = add(store, REQUESTER, "A1BBB")
    assert store.decide(first, user_id=APPROVER, approve=True)
    assert store.claim(first, owner="test", lease=timedelta(seconds=30), mturk_env="sandbox")
    failure = WorkerOutcome("A1BBB", 1, WorkerStatus.FAILED, "Code", "MTurk said no")
    store.record_outcomes(first, [WorkerOutcome("A1AAA", 0, WorkerStatus.GRANTED), failure])
    assert store.finish(first, owner="test") is RequestState.FAILED

    mine, total = store.requests_by_requester(REQUESTER, 1)
    assert [r.id for r in mine] == [third] and total == 2
    assert store.requests_by_requester("U0NOBODY", 10) == ([], 0)

    pending, total = store.pending_requests(10)
    assert [r.id for r in pending] == [second, third] and total == 2

    history, total = store.worker_history("A1BBB", 2)
    assert total == 3
    assert [(r.id, o.status, o.integer_value) for r, o in history] == [
        (third, WorkerStatus.PENDING, 0),
        (second, WorkerStatus.PENDING, 0),
    ]
    everyone, _ = store.worker_history("A1BBB", 3)
    request, outcome = everyone[2]
    assert request.id == first and request.state is RequestState.FAILED and request.round == 1
    assert (outcome.status, outcome.error_message, outcome.integer_value) == (WorkerStatus.FAILED, "MTurk said no", 1)
    assert store.worker_history("A1ZZZ", 5) == ([], 0)

    counts = store.status_counts_of([first, second])
    assert counts[first] == {
        WorkerStatus.GRANTED: 1,
        WorkerStatus.FAILED: 1,
        WorkerStatus.PENDING: 0,
        WorkerStatus.SKIPPED: 0,
    }
    assert counts[second] == {
        WorkerStatus.GRANTED: 0,
        WorkerStatus.FAILED: 0,
        WorkerStatus.PENDING: 2,
        WorkerStatus.SKIPPED: 0,
    }


def test_lookups_check_who_asks_and_bound_their_answers(store: GrantStore) -> None:
    policy = AccessPolicy(frozenset({REQUESTER}), frozenset({APPROVER}))
    lookups = Lookups(store, policy)
    for _ in range(12):
        add(store, REQUESTER, "A1AAA")
    for ask_outsider in (lambda: lookups.status(OUTSIDER, 1), lambda: lookups.mine(OUTSIDER)):
        with pytest.raises(NotAllowed, match="look things up"):
            ask_outsider()
    with pytest.raises(NotAllowed):
        lookups.history(OUTSIDER, "A1AAA")

    assert lookups.status(REQUESTER, 13) is None
    assert lookups.status(REQUESTER, 2**31) is None and lookups.status(REQUESTER, 0) is None
    status = lookups.status(APPROVER, 12)
    assert status is not None and status.request.id == 12
    assert (status.granted, status.failed, status.pending) == (0, 0, 1)

    mine = lookups.mine(REQUESTER)
    assert [s.request.id for s in mine.recent.statuses] == list(range(12, 2, -1))
    assert mine.recent.left_out == 2 and mine.waiting is None
    approver = lookups.mine(APPROVER)
    assert approver.recent.statuses == () and approver.recent.total == 0
    assert approver.waiting is not None and approver.waiting.left_out == 0
    assert [s.request.id for s in approver.waiting.statuses] == list(range(1, 13))

    history = lookups.history(REQUESTER, "A1AAA")
    assert history.total == 12 and len(history.entries) == 12 and history.older == 0
    assert history.entries[0].request.id == 12 and history.entries[0].outcome.status is WorkerStatus.PENDING
