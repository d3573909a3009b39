"""The grant form's type picker: an external_select whose options the app answers to Slack's signed
block_suggestion requests, from the account's own types (ListQualificationTypes, every page, cached)."""

from __future__ import annotations

import json
from typing import Any

from tests.app_process import AppProcess
from tests.conftest import APPROVER_2, OUTSIDER, QUAL, QUAL_NAME, REQUESTER, SIGNING_SECRET, WORKERS, RunningApp
from tests.fakes import FakeSlack
from tests.fakes.socket_mode import FakeSocketMode
from tests.slack_sender import SlackSender, modal_values, picked_type
from tests.test_socket_mode import gateway, socket_app  # noqa: F401 (fixtures)

OTHER = "3OTHERTYPE0000000001"


def options(app: RunningApp, typed: str, user: str = REQUESTER) -> list[dict[str, Any]]:
    reply = app.sender.suggest(user, typed)
    assert reply.status == 200, reply
    answer = reply.json()
    assert set(answer) == {"options"}, answer
    return answer["options"]


def test_the_form_has_a_searchable_type_picker(app: RunningApp) -> None:
    app.request("", response_key="form")
    view = app.slack.wait_for(lambda: app.slack.calls_to("views.open"))[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    (picker,) = [b for b in view["blocks"] if b.get("block_id") == "qualification_type"]
    element = picker["element"]
    assert element["type"] == "external_select" and element["min_query_length"] == 0
    assert element["action_id"] == "pick_qualification_type" and not picker.get("optional")


def test_the_picker_lists_the_accounts_own_types_as_name_and_id(app: RunningApp) -> None:
    app.mturk.add_type(OTHER, "Attention check")
    app.mturk.add_type("3THEIRS0000000000001", "Passed screener too", owned=False)
    shown = options(app, "")
    assert shown == [
        {"text": {"type": "plain_text", "text": f"Attention check ({OTHER})"}, "value": OTHER},
        {"text": {"type": "plain_text", "text": f"{QUAL_NAME} ({QUAL})"}, "value": QUAL},
    ]
    listing = app.mturk.calls("ListQualificationTypes")
    assert listing and all(call["MustBeOwnedByCaller"] is True for call in listing)


def test_typing_filters_by_name_or_id(app: RunningApp) -> None:
    app.mturk.add_type(OTHER, "Attention check")
    assert [o["value"] for o in options(app, "screen")] == [QUAL]
    assert [o["value"] for o in options(app, "ATTENTION CHECK")] == [OTHER]
    assert [o["value"] for o in options(app, "3other")] == [OTHER]
    assert options(app, "nothing like it") == []


def test_many_types_give_at_most_100_options_within_slacks_limits(app: RunningApp) -> None:
    for i in range(150):
        app.mturk.add_type(f"3MANY{i:015d}", f"Type {i:03d} " + "with a very long name " * 10)
    shown = options(app, "type")
    assert len(shown) == 100
    assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in shown)
    assert shown[0]["text"]["text"].endswith("… (3MANY000000000000000)") and shown[0]["value"] == "3MANY000000000000000"
    assert len(options(app, "3MANY000000000000149")) == 1  # the last page's type is there too
    calls = app.mturk.calls("ListQualificationTypes")
    assert len(calls) == 2 and "NextToken" in calls[1]  # listed once, to the end, then cached


def test_the_list_is_cached_briefly(app: RunningApp) -> None:
    for typed in ("", "p", "pa", "pas"):
        options(app, typed)
    assert len(app.mturk.calls("ListQualificationTypes")) == 1


def test_someone_who_may_not_request_gets_no_options(app: RunningApp) -> None:
    assert options(app, "", user=OUTSIDER) == []
    assert options(app, "", user=APPROVER_2) == []  # an approver only: the form is for requesting
    assert app.mturk.calls("ListQualificationTypes") == []


def test_a_picked_type_is_submitted_by_its_id(app: RunningApp) -> None:
    (option,) = options(app, "passed")
    state = modal_values(workers=WORKERS[0])
    state["qualification_type"] = picked_type(option["value"], option["text"]["text"])
    reply = app.sender.submit_view(REQUESTER, state)
    assert reply.status == 200 and reply.json() is None
    request = app.grant_qual.store.get(1)
    assert request is not None and (request.qualification_type_id, request.qualification_name) == (QUAL, QUAL_NAME)


def test_a_forged_choice_is_still_checked_as_the_accounts_own(app: RunningApp) -> None:
    app.mturk.add_type("3THEIRS0000000000001", "Theirs", owned=False)
    for forged in ("3THEIRS0000000000001", "not an id"):
        state = modal_values(qualification=forged, workers=WORKERS[0])
        reply = app.sender.submit_view(REQUESTER, state)
        assert reply.status == 200 and reply.json()["response_action"] == "errors"
        assert reply.json()["errors"]["qualification_type"]
    assert app.grant_qual.store.requests() == []


def test_the_picker_over_socket_mode(
    socket_app: AppProcess,  # noqa: F811 (the fixture imported above)
    gateway: FakeSocketMode,  # noqa: F811
    fake_slack: FakeSlack,
) -> None:
    """In Socket Mode the options travel in the envelope's acknowledgement."""
    slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
    ack = gateway.send("interactive", slack.block_suggestion_payload(REQUESTER, "screen"))
    option = {"text": {"type": "plain_text", "text": f"{QUAL_NAME} ({QUAL})"}, "value": QUAL}
    assert ack["payload"] == {"options": [option]}
    assert gateway.send("interactive", slack.block_suggestion_payload(OUTSIDER, ""))["payload"] == {"options": []}


def test_the_http_mode_manifest_the_readme_describes_is_valid() -> None:
    """In HTTP mode Slack asks the options load URL for the picker's options (Socket Mode sends them over the
    socket): the manifest the README's "HTTP mode" describes must still be one Slack accepts."""
    import jsonschema

    from tests.conftest import load_manifest
    from tests.test_manifest import SCHEMA

    manifest = load_manifest()
    manifest["settings"]["socket_mode_enabled"] = False
    manifest["features"]["slash_commands"][0]["url"] = "https://grant-qual.example.org/slack/events"
    manifest["settings"]["interactivity"].update(
        request_url="https://grant-qual.example.org/slack/events",
        message_menu_options_url="https://grant-qual.example.org/slack/events",
    )
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))
