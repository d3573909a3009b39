"""Properties over arbitrary input: the parsers, the Block Kit builders, and the listeners of a running app.

The pure properties run many examples; the listener properties share one running app per test (so its
state carries over between examples, as it would in production) and run fewer.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.mturk import QualificationTypeInfo
from bot.outcome_digest import OutcomeDigest
from bot.qualification_types import resolve_type
from bot.requests import (
    INT32_MAX,
    INT32_MIN,
    MAX_REASON_CHARS,
    GrantRequest,
    GrantSpec,
    HelpWanted,
    HoldersLookup,
    InvalidRequest,
    Lookup,
    ModalWanted,
    RequestState,
    ScoreLookup,
    WorkerOutcome,
    WorkerStatus,
    build_grant_spec,
    is_lookup,
    is_mturk_lookup,
    parse_command_text,
    split_worker_ids,
)
from bot.slack import blocks
from tests.block_kit import text_objects, valid_block_kit, validate_blocks  # noqa: F401 (a fixture)
from tests.conftest import APPROVER, APPROVER_2, CHANNEL, OUTSIDER, QUAL, QUAL_NAME, REQUESTER, WORKERS, RunningApp
from tests.slack_sender import modal_values

WORKER_ID = re.compile(r"A[A-Z0-9]{1,63}")
QUALIFICATION_ID = re.compile(r"[A-Z0-9]{1,64}")
MAX_WORKERS = 25
# The app's own control sequences in mrkdwn: user mentions it writes, and dates. Nothing else may use < or >.
OWN_SEQUENCES = re.compile(r"<@U[A-Z0-9]+>|<!date\^\d+\^[^<>|]*\|[^<>|]*>")

worker_ids = st.from_regex(r"A[A-Z0-9]{1,20}", fullmatch=True) | st.from_regex(r"A[A-Z0-9]{60,63}", fullmatch=True)
qualification_ids = st.from_regex(r"[A-Z0-9]{1,64}", fullmatch=True)
user_ids = st.from_regex(r"U[A-Z0-9]{2,12}", fullmatch=True)
# Arbitrary text, plus text full of what Slack's mrkdwn treats specially.
hostile_text = st.text() | st.text(alphabet="<>&*_~`@!#|:/ \nAUhttps.evil", max_size=200)
near_valid_values = st.sampled_from(["", "0", "1", "-1", "+5", "90", str(INT32_MAX), str(INT32_MIN), "2147483648"])
values = near_valid_values | st.text(max_size=15) | st.integers().map(str)

command_tokens = st.one_of(
    st.sampled_from(
        [
            *[QUAL, "3NOTOURS000000000001", "help", "value=", "value=7", "notify=no", "notify=maybe", "reason="],
            *["x=y", "=", '"Passed screener"', "“passed  SCREENER”", '"Passed', "score", "holders", "Score", "SCORE"],
        ]
    ),
    st.sampled_from(["status", "Status", "STATUS", "#12", "12", "history", "mine", "list", "LIST"]),  # look-ups
    st.sampled_from(WORKERS),
    worker_ids,
    qualification_ids,
    values.map(lambda v: f"value={v}"),
    hostile_text.map(lambda t: f"reason={t}"),
    st.text(max_size=20),
)
separators = st.sampled_from([" ", "  ", "\n", ",", ", ", ";", "\t", "\u00a0", ""])


good_values = st.sampled_from(["", "0", "1", "-1", "+5", "90", str(INT32_MAX), str(INT32_MIN)])
good_workers = st.lists(st.sampled_from(WORKERS) | worker_ids, min_size=1, max_size=6)
one_line = hostile_text.map(lambda t: t.replace("\n", " ").replace("\r", " "))


@st.composite
def near_valid_commands(draw: st.DrawFn) -> str:
    """The shape of a request: about half are valid, the rest have one part spoiled."""
    qualification = QUAL
    workers = draw(good_workers)
    options = draw(st.lists(st.sampled_from(["value=", "notify="]), unique=True))
    option_values = {"value=": draw(good_values), "notify=": draw(st.sampled_from(["no", "yes", "NO", "off", ""]))}
    if not draw(st.booleans()):
        spoil = draw(st.sampled_from(["qualification", "worker", "value", "notify"]))
        if spoil == "qualification":
            qualification = draw(st.sampled_from(["3NOTOURS000000000001", "", "q"]) | st.text(max_size=8))
        elif spoil == "worker":
            workers.insert(draw(st.integers(0, len(workers))), draw(st.text(max_size=8)))
        else:
            options.append(f"{spoil}=")
            option_values[f"{spoil}="] = draw(values)
    words = [qualification, *draw(st.permutations([*workers, *(o + option_values[o] for o in options)]))]
    text = "".join(word + draw(separators.filter(bool)) for word in words)
    if draw(st.booleans()):
        text += f" reason={draw(one_line)}"
    return text


@st.composite
def command_texts(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.text())
    if kind == 1:
        return draw(near_valid_commands())
    parts = draw(st.lists(st.tuples(command_tokens, separators), max_size=12))
    return "".join(token + separator for token, separator in parts)


worker_fields = st.one_of(
    st.text(),
    st.lists(st.sampled_from(WORKERS) | worker_ids | st.text(max_size=10), max_size=30).flatmap(
        lambda ids: separators.map(lambda sep: (sep or " ").join(ids))
    ),
    good_workers.flatmap(lambda ids: separators.filter(bool).map(lambda sep: sep.join(ids))),
)


def check_spec(spec: GrantSpec, max_workers: int) -> None:
    # A type given by name has no ID until the service finds it among the account's types.
    by_name = bool(spec.type_name) and spec.qualification_type_id == ""
    assert by_name or QUALIFICATION_ID.fullmatch(spec.qualification_type_id), spec.qualification_type_id
    ids = [w.worker_id for w in spec.workers]
    assert 1 <= len(ids) <= max_workers
    assert all(WORKER_ID.fullmatch(w) for w in ids), ids
    assert len(set(ids)) == len(ids), "duplicate worker IDs"
    for worker in spec.workers:
        assert worker.integer_value is None or (
            type(worker.integer_value) is int and INT32_MIN <= worker.integer_value <= INT32_MAX
        )
    assert isinstance(spec.send_notification, bool)
    assert len(spec.reason) <= MAX_REASON_CHARS and spec.reason == spec.reason.strip()
    assert "\x00" not in spec.reason  # PostgreSQL text cannot hold NUL


def check_invalid(invalid: InvalidRequest) -> None:
    assert invalid.errors, "an InvalidRequest must say what is wrong"
    assert all(isinstance(message, str) and message for message in invalid.errors.values())


# ---------------------------------------------------------------------------------------------- pure parsing


@settings(max_examples=250, deadline=None)
@given(command_texts(), st.integers(min_value=1, max_value=MAX_WORKERS))
def test_parse_command_text_only_raises_invalid_request(text: str, max_workers: int) -> None:
    try:
        parsed = parse_command_text(text, max_workers=max_workers)
    except InvalidRequest as invalid:
        check_invalid(invalid)
        return
    assert isinstance(parsed, Lookup) == is_lookup(text)  # a look-up word decides, whatever follows it
    if isinstance(parsed, GrantSpec):
        check_spec(parsed, max_workers)
    elif not isinstance(parsed, Lookup):
        assert isinstance(parsed, HelpWanted | ModalWanted | ScoreLookup | HoldersLookup)
        assert isinstance(parsed, HelpWanted) == (text.strip().lower() in {"help", "-h", "--help", "?"})
        assert isinstance(parsed, ScoreLookup | HoldersLookup) == is_mturk_lookup(text)


@settings(max_examples=250, deadline=None)
@given(
    qualification=st.one_of(qualification_ids, st.text(), st.sampled_from([QUAL, f" {QUAL}\n", ""])),
    worker_lists=st.one_of(
        worker_fields.map(split_worker_ids),
        st.lists(st.sampled_from(WORKERS) | worker_ids | st.text(max_size=10), max_size=30),  # duplicates too
    ),
    value=st.none() | values,
    notify=st.booleans(),
    reason=st.text() | st.text(min_size=2990, max_size=3010, alphabet="ab \n\x00"),
    max_workers=st.integers(min_value=1, max_value=MAX_WORKERS),
)
def test_build_grant_spec_only_raises_invalid_request(
    qualification: str, worker_lists: list[str], value: str | None, notify: bool, reason: str, max_workers: int
) -> None:
    try:
        spec = build_grant_spec(
            qualification_type_id=qualification,
            worker_ids=worker_lists,
            integer_value=value,
            send_notification=notify,
            reason=reason,
            max_workers=max_workers,
        )
    except InvalidRequest as invalid:
        check_invalid(invalid)
        return
    check_spec(spec, max_workers)
    assert spec.send_notification is notify
    assert [w.worker_id for w in spec.workers] == list(dict.fromkeys(worker_lists))


@settings(max_examples=300, deadline=None)
@given(worker_fields)
def test_split_worker_ids_keeps_every_id_once_in_order(text: str) -> None:
    ids = split_worker_ids(text)
    assert len(set(ids)) == len(ids)
    assert all(ids) and not any(re.search(r"[\s,;]", w) for w in ids)
    # Nothing but separators is lost, and the first occurrences keep their order.
    assert [w for w in dict.fromkeys(re.split(r"[\s,;]+", text)) if w] == ids


# ---------------------------------------------------------------------------------------------- pure Block Kit


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_escape_defuses_every_control_character(text: str) -> None:
    escaped = blocks.escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


@st.composite
def grant_requests(
    draw: st.DrawFn, states: tuple[RequestState, ...] = tuple(RequestState)
) -> tuple[GrantRequest, list[WorkerOutcome]]:
    ids = draw(st.lists(worker_ids, min_size=1, max_size=60, unique=True))
    value = draw(st.none() | st.integers(min_value=INT32_MIN, max_value=INT32_MAX))
    state = draw(st.sampled_from(states))
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    decided = state is not RequestState.PENDING
    outcomes = []
    for worker_id in ids:
        status = WorkerStatus.PENDING
        if state in (RequestState.DONE, RequestState.FAILED):
            status = draw(st.sampled_from([WorkerStatus.GRANTED, WorkerStatus.FAILED]))
        failed = status is WorkerStatus.FAILED
        outcomes.append(
            WorkerOutcome(
                worker_id,
                value if draw(st.integers(0, 9)) else draw(st.none() | st.integers(INT32_MIN, INT32_MAX)),
                status,
                error_code=draw(st.none() | st.text(max_size=60)) if failed else None,
                error_message=draw(st.none() | hostile_text) if failed else None,
                hint=draw(st.none() | hostile_text) if failed else None,
            )
        )
    request = GrantRequest(
        id=draw(st.integers(min_value=1, max_value=10**9)),
        requester_id=draw(user_ids),
        qualification_type_id=draw(qualification_ids),
        qualification_name=draw(st.none() | hostile_text | st.text(alphabet="<>&", min_size=90, max_size=255)),
        send_notification=draw(st.booleans()),
        reason=draw(hostile_text | st.text(min_size=2990, max_size=3000)).strip(),
        mturk_env=draw(st.sampled_from(["sandbox", "production"])),
        state=state,
        worker_count=len(ids),
        created_at=created,
        decided_by=draw(user_ids) if decided else None,
        decided_at=created + timedelta(minutes=5) if decided else None,
        finished_at=created + timedelta(minutes=6) if state.is_final and decided else None,
        round=draw(st.integers(min_value=1, max_value=10**6)),
    )
    return request, outcomes


def assert_only_own_sequences(message_blocks: list[dict[str, Any]], text: str) -> None:
    """User text cannot ping, link or format: in mrkdwn, every < or > belongs to the app's own sequences."""
    mrkdwn = [text] + [obj["text"] for _, obj in text_objects(message_blocks) if obj["type"] == "mrkdwn"]
    for shown in mrkdwn:
        leftover = OWN_SEQUENCES.sub("", shown)
        assert "<" not in leftover and ">" not in leftover, shown


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(grant_requests(), st.booleans())
def test_request_message_is_valid_block_kit_for_any_request(
    drawn: tuple[GrantRequest, list[WorkerOutcome]], with_progress: bool
) -> None:
    request, outcomes = drawn
    status = None
    if request.state is not RequestState.PENDING:
        detail = " — granting: 3 granted, 0 failed, 9 remaining (12/s)" if with_progress else ""
        status = blocks.decided_status(request, detail)
    text, message_blocks = blocks.request_message(request, OutcomeDigest.of(outcomes), status)
    validate_blocks(message_blocks, where="request_message")
    assert text and len(text) <= 40_000
    assert_only_own_sequences(message_blocks, text)
    if request.reason:  # the approver sees the reason, verbatim, as plain text
        (reason,) = [o["text"] for _, o in text_objects(message_blocks) if o["text"].startswith("Reason: ")]
        assert reason.rstrip("…") in f"Reason: {request.reason}"
    assert sum(b["type"] == "actions" for b in message_blocks) == (status is None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    grant_requests(states=(RequestState.DONE, RequestState.FAILED)),
    st.none() | st.floats(min_value=0, max_value=10**7, allow_nan=False),
)
def test_result_message_is_valid_block_kit_for_any_outcome(
    drawn: tuple[GrantRequest, list[WorkerOutcome]], elapsed: float | None
) -> None:
    request, outcomes = drawn
    text, message_blocks = blocks.result_message(request, OutcomeDigest.of(outcomes), elapsed)
    validate_blocks(message_blocks, where="result_message")
    retired = blocks.retired_summary(message_blocks, "U0RETRIER", request.round + 1)
    validate_blocks(retired, where="retired_summary")
    assert_only_own_sequences(retired, "")
    assert text and len(text) <= 40_000
    assert_only_own_sequences(message_blocks, text)
    link = "https://lab.slack.com/archives/C0/p1"
    rejection_dm = blocks.rejection_dm(request, link).replace(f"<{link}|See the request>", "")
    granted = sum(o.status is WorkerStatus.GRANTED for o in outcomes)
    result_dm = blocks.result_dm(request, granted, len(outcomes) - granted, elapsed, None)
    progress = blocks.progress_text(request, granted, 0, len(outcomes) - granted, elapsed)
    for line in (blocks.rejection_reply(request), rejection_dm, result_dm, progress):
        assert_only_own_sequences([], line)


# ---------------------------------------------------------------------------------------------- through the app

LISTENER_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def stored_count(app: RunningApp) -> int:
    return len(app.grant_qual.store.requests())


def no_grants(app: RunningApp) -> None:
    assert app.mturk.calls("AssociateQualificationWithWorker") == []
    assert app.mturk.grants == []


def expected_verdict(parse: Any) -> bool:
    """Whether the pure parser accepts the input as a request for a type this requester account owns."""
    try:
        spec = parse()
    except InvalidRequest:
        return False
    if isinstance(spec, GrantSpec) and spec.type_name:
        ours = [QualificationTypeInfo(QUAL, QUAL_NAME, "Active")]
        with contextlib.suppress(InvalidRequest):
            return resolve_type(spec.type_name, ours, "SANDBOX").qualification_type_id == QUAL
        return False
    return isinstance(spec, GrantSpec) and spec.qualification_type_id == QUAL


@pytest.mark.usefixtures("valid_block_kit")  # everything sent, checked at the end
@LISTENER_SETTINGS
@given(text=command_texts())
@example(text=f"{QUAL} {WORKERS[0]},{WORKERS[1]} value=3 notify=no reason=<!channel> *hi* & <@U0APPROVE>")
@example(text=f"{QUAL} {WORKERS[0]} a1lower value=1e3 notify=maybe")
@example(text="")
@example(text=" HELP ")
@example(text=f"“passed  Screener” {WORKERS[0]} value=2")
@example(text=f'"Passed" {WORKERS[0]}')
def test_any_command_text_gets_200_and_stores_only_valid_requests(app: RunningApp, text: str) -> None:
    before, opened = stored_count(app), len(app.slack.calls_to("views.open"))
    key = f"prop-{time.monotonic_ns()}"
    reply = app.request(text, response_key=key)
    assert reply.status == 200, reply
    max_workers = app.grant_qual.settings.max_workers_per_request
    parsed: Any = None
    with contextlib.suppress(InvalidRequest):
        parsed = parse_command_text(text, max_workers=max_workers)
    if isinstance(parsed, ModalWanted):
        app.slack.wait_for(lambda: len(app.slack.calls_to("views.open")) > opened)
    else:
        (answer,) = app.slack.wait_for(lambda: app.slack.responses_for(key))
        assert answer["response_type"] == "ephemeral"
    valid = expected_verdict(lambda: parse_command_text(text, max_workers=max_workers))
    event("stored" if valid else type(parsed).__name__)
    assert stored_count(app) == before + valid
    no_grants(app)


@st.composite
def modal_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """What people type into the modal: about half valid, the rest with some fields arbitrary."""
    inputs = {
        "qualification": draw(st.sampled_from([QUAL, f"  {QUAL} ", f"{QUAL}\n"])),
        "workers": draw(good_workers.flatmap(lambda ids: separators.filter(bool).map(lambda sep: sep.join(ids)))),
        "value": draw(good_values),
        "notify": draw(st.booleans()),
        "reason": draw(hostile_text),
        "user": draw(st.sampled_from([REQUESTER, APPROVER])),
    }
    arbitrary = {
        "qualification": st.sampled_from(["3NOTOURS000000000001", ""]) | st.text(),
        "workers": worker_fields,
        "value": values,
        "reason": st.text(min_size=2995, max_size=3005, alphabet="ab <>&\n\x00"),
        "user": st.just(OUTSIDER),
    }
    spoiled = draw(st.lists(st.sampled_from(sorted(arbitrary)), unique=True, min_size=1, max_size=3))
    for field in spoiled if draw(st.booleans()) else []:
        inputs[field] = draw(arbitrary[field])
    return inputs


@pytest.mark.usefixtures("valid_block_kit")  # everything sent, checked at the end
@LISTENER_SETTINGS
@given(inputs=modal_inputs())
@example(
    inputs={
        "qualification": QUAL,
        "workers": f"{WORKERS[0]}\n{WORKERS[1]}",
        "value": "",
        "notify": False,
        "reason": "",
        "user": REQUESTER,
    }
)
@example(
    inputs={
        "qualification": QUAL,
        "workers": WORKERS[0],
        "value": "-5",
        "notify": True,
        "reason": "<!here> x\x00y",
        "user": APPROVER,
    }
)
@example(
    inputs={"qualification": QUAL, "workers": WORKERS[0], "value": "", "notify": True, "reason": "", "user": OUTSIDER}
)
def test_any_modal_values_get_200_and_store_only_valid_requests(app: RunningApp, inputs: dict[str, Any]) -> None:
    qualification, workers, value, notify, reason, user = (
        inputs[k] for k in ("qualification", "workers", "value", "notify", "reason", "user")
    )
    before = stored_count(app)
    state = modal_values(qualification, workers, value, notify, reason)
    reply = app.sender.submit_view(user, state, private_metadata=json.dumps({"response_url": ""}))
    assert reply.status == 200, reply
    max_workers = app.grant_qual.settings.max_workers_per_request
    valid = user != OUTSIDER and expected_verdict(
        lambda: build_grant_spec(
            qualification_type_id=qualification,
            worker_ids=split_worker_ids(workers),
            integer_value=value,
            send_notification=notify,
            reason=reason,
            max_workers=max_workers,
        )
    )
    answer = reply.json()
    event("stored" if valid else "refused")
    if valid:
        assert answer is None, answer  # the modal closes
        assert stored_count(app) == before + 1
        stored = app.grant_qual.store.requests()[-1]
        assert stored.send_notification is notify and stored.requester_id == user
    else:
        assert answer["response_action"] == "errors" and answer["errors"], answer
        assert set(answer["errors"]) <= {"qualification_type", "workers", "value", "notify", "reason"}
        assert stored_count(app) == before
    no_grants(app)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
action_values = st.one_of(
    st.sampled_from(["abc", "-1", "0", "1", "01", " 1", "1.0", "99999999999999999999", "", "²", "١", "１"]),
    st.sampled_from(["1:1", "1:2", "1:", ":1", "1:1:1", "²:1", "1:²", "1:99999999999", "99999999999999999999:1"]),
    st.text(max_size=25),
    st.integers().map(str),
    json_values,
)


def _spoil(draw: st.DrawFn, node: dict[str, Any], *, keep: tuple[str, ...] = (), garbage: tuple[str, ...]) -> None:
    """Leave out some of node's keys, and replace those named in `garbage` with arbitrary JSON."""
    for key in list(node):
        if key in keep:
            continue
        roll = draw(st.integers(0, 11))
        if roll == 0:
            del node[key]
        elif roll == 1 and key in garbage:
            node[key] = draw(json_values)


@st.composite
def garbage_clicks(draw: st.DrawFn) -> dict[str, Any]:
    """A block_actions payload shaped like Slack's, with fields left out and the action garbled.

    Top-level objects (user, team, channel, container) are left out but not given the wrong type: Bolt reads
    them while parsing the request, before any of the app's code (see test_hostile_input's unsigned garbage).
    """
    action: dict[str, Any] = {
        "action_id": draw(
            st.sampled_from([blocks.APPROVE_ACTION, blocks.REJECT_ACTION, blocks.RETRY_ACTION]) | st.text(max_size=10)
        ),
        "block_id": draw(st.text(max_size=10)),
        "type": "button",
        "value": draw(action_values),
        "action_ts": "1.0",
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0001", "domain": "lab"},
        # Nobody here may decide request #1: its requester is APPROVER, and self-approval is off.
        "user": {"id": draw(st.sampled_from([APPROVER, REQUESTER, OUTSIDER, ""]) | st.text(max_size=10))},
        "api_app_id": "A0APP",
        "container": {"type": "message", "message_ts": "1.0", "channel_id": CHANNEL},
        "trigger_id": "trigger-x",
        "channel": {"id": CHANNEL},
        "response_url": RESPONSE_URL_PLACEHOLDER,
        "actions": [action],
    }
    _spoil(draw, action, keep=("action_id",) if draw(st.booleans()) else (), garbage=tuple(action))
    _spoil(draw, payload, keep=("type",), garbage=("response_url", "trigger_id", "actions"))
    if draw(st.integers(0, 5)) == 0:
        payload["actions"] = draw(st.lists(json_values | st.just(action), max_size=3))
    return payload


RESPONSE_URL_PLACEHOLDER = "response-url"


def click(action_id: str, value: Any, user: str = APPROVER, **changes: Any) -> dict[str, Any]:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0001", "domain": "lab"},
        "user": {"id": user},
        "api_app_id": "A0APP",
        "container": {"type": "message", "message_ts": "1.0", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "response_url": RESPONSE_URL_PLACEHOLDER,
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


@pytest.mark.usefixtures("valid_block_kit")  # everything sent, checked at the end
@LISTENER_SETTINGS
@given(payload=garbage_clicks())
@example(payload=click(blocks.APPROVE_ACTION, "²"))
@example(payload=click(blocks.APPROVE_ACTION, "1", response_url=None))  # refused, and nowhere to say so
@example(payload=click(blocks.APPROVE_ACTION, "1", user=APPROVER_2, actions=[]))
@example(payload=click(blocks.REJECT_ACTION, "99999999999999999999", user=REQUESTER))
@example(payload=click(blocks.RETRY_ACTION, "²:1"))
@example(payload=click(blocks.RETRY_ACTION, "1:²"))
@example(payload=click(blocks.RETRY_ACTION, "1:1", response_url=None))
@example(payload=click(blocks.RETRY_ACTION, "1:1", user=None))
def test_garbage_button_clicks_never_fail_and_never_grant(app: RunningApp, payload: dict[str, Any]) -> None:
    if stored_count(app) == 0:  # one pending request that none of the clickers may decide
        app.request(f"{QUAL} {WORKERS[0]}", user=APPROVER)
        app.approval_message(1)
    key = f"click-{time.monotonic_ns()}"
    if payload.get("response_url") == RESPONSE_URL_PLACEHOLDER:
        payload["response_url"] = app.slack.response_url(key)
    reply = app.sender.post({"payload": json.dumps(payload)})
    assert 200 <= reply.status < 500, reply
    request = app.grant_qual.store.get(1)
    assert request is not None and request.state is RequestState.PENDING
    no_grants(app)
