"""A qualification type named by its name on the one-line command: found among the account's own types
(every page of ListQualificationTypes), several of one name answered with their IDs, none with close names."""

from __future__ import annotations

import pytest

from bot.mturk import QualificationTypeInfo
from bot.qualification_types import close_names, matching_types, normalise_name, resolve_type
from bot.requests import (
    Field,
    GrantSpec,
    HoldersLookup,
    InvalidRequest,
    ScoreLookup,
    parse_command_text,
)
from tests.conftest import QUAL, QUAL_NAME, WORKERS, RunningApp

OTHER = "3OTHERTYPE0000000001"


def answer(app: RunningApp, key: str) -> str:
    (note,) = app.slack.wait_for(lambda: app.slack.responses_for(key))
    assert note["response_type"] == "ephemeral"
    return str(note["text"])


def owned_listings(app: RunningApp) -> list[dict]:
    return app.mturk.calls("ListQualificationTypes")


# ------------------------------------------------------------------------------------ through Slack


@pytest.mark.parametrize(
    "typed",
    [
        f'"{QUAL_NAME}"',
        "“Passed screener”",  # Slack's clients turn straight quotes into typographic ones
        '"  passed   SCREENER "',  # case and spaces aside
        f'"{QUAL}"',  # an ID in quotes is still found, when no type has it as its name
    ],
)
def test_a_request_names_its_type_by_name(app: RunningApp, typed: str) -> None:
    app.request(f"{typed} {WORKERS[0]} {WORKERS[1]} value=90 reason=passed", response_key="n")
    assert "waiting for approval" in answer(app, "n")
    request = app.grant_qual.store.get(1)
    assert request is not None
    assert (request.qualification_type_id, request.qualification_name, request.worker_count) == (QUAL, QUAL_NAME, 2)
    assert all(call["MustBeOwnedByCaller"] is True for call in owned_listings(app))


def test_a_name_on_the_last_page_of_many_types_is_found(app: RunningApp) -> None:
    for i in range(230):
        app.mturk.add_type(f"3FILLER{i:013d}", f"Filler {i:03d}")
    app.mturk.add_type(OTHER, "Last one")
    app.request(f'"Last one" {WORKERS[0]}', response_key="last")
    assert "waiting for approval" in answer(app, "last")
    assert app.grant_qual.store.get(1).qualification_type_id == OTHER  # type: ignore[union-attr]
    calls = owned_listings(app)
    assert len(calls) == 3 and "NextToken" not in calls[0] and all("NextToken" in c for c in calls[1:])
    assert {c["MaxResults"] for c in calls} == {100}


def test_several_types_of_one_name_answer_with_their_ids_and_post_nothing(app: RunningApp) -> None:
    app.mturk.add_type(OTHER, "passed  Screener")
    app.request(f'"Passed screener" {WORKERS[0]}', response_key="two")
    text = answer(app, "two")
    assert "Nothing was posted" in text
    assert "2 qualification types of this account in the SANDBOX are named" in text
    assert f"`{QUAL}`" in text and f"`{OTHER}`" in text and "Give the ID" in text
    assert app.grant_qual.store.requests() == [] and app.slack.calls_to("chat.postMessage") == []


def test_an_unknown_name_suggests_close_names_and_posts_nothing(app: RunningApp) -> None:
    app.request(f'"Passed" {WORKERS[0]}', response_key="close")
    text = answer(app, "close")
    assert "No qualification type named “Passed” was created by this requester account in the SANDBOX" in text
    assert f"Did you mean “{QUAL_NAME}” (`{QUAL}`)?" in text
    app.request(f'"Nothing like it" {WORKERS[0]}', response_key="none")
    assert "Check the name on the requester site" in answer(app, "none")
    assert app.grant_qual.store.requests() == [] and app.slack.calls_to("chat.postMessage") == []


def test_another_requesters_type_of_that_name_is_not_found(app: RunningApp) -> None:
    app.mturk.add_type(OTHER, "Theirs", owned=False)
    app.request(f'"Theirs" {WORKERS[0]}', response_key="theirs")
    assert "No qualification type named “Theirs”" in answer(app, "theirs")
    assert app.grant_qual.store.requests() == []


def test_a_name_without_quotes_is_told_to_use_them(app: RunningApp) -> None:
    app.request(f"screener {WORKERS[0]}", response_key="bare")
    text = answer(app, "bare")
    assert "`screener` is not a qualification type ID" in text and 'name goes in quotes: "Passed screener"' in text
    app.request(f'"Passed screener {WORKERS[0]}', response_key="open")
    assert "no closing quote" in answer(app, "open")
    assert app.grant_qual.store.requests() == []


def test_a_name_is_escaped_in_the_answer(app: RunningApp) -> None:
    app.mturk.add_type(OTHER, "<!channel> & co")
    app.request(f'"<!channel>" {WORKERS[0]}', response_key="esc")
    text = answer(app, "esc")
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text


# ------------------------------------------------------------------------------------ pure parts


def test_parsing_takes_a_quoted_name_with_spaces_and_options_after_it() -> None:
    spec = parse_command_text(f"“A  reason=x name” {WORKERS[0]} value=3 reason=r", max_workers=10)
    assert isinstance(spec, GrantSpec)
    assert (spec.type_name, spec.qualification_type_id, spec.reason) == ("A  reason=x name", "", "r")
    assert [w.integer_value for w in spec.workers] == [3]
    by_id = parse_command_text(f"{QUAL} {WORKERS[0]}", max_workers=10)
    assert isinstance(by_id, GrantSpec) and (by_id.qualification_type_id, by_id.type_name) == (QUAL, "")


def test_parsing_lookups_and_what_stays_a_grant() -> None:
    assert parse_command_text(f'score "{QUAL_NAME}" {WORKERS[0]}', max_workers=1) == ScoreLookup(QUAL_NAME, WORKERS[0])
    assert parse_command_text(f"Score {QUAL}\n{WORKERS[0]}", max_workers=1) == ScoreLookup(QUAL, WORKERS[0])
    assert parse_command_text("holders “Passed screener”", max_workers=1) == HoldersLookup(QUAL_NAME)
    # All capitals could be a type ID: SCORE is one, so this is a grant of type SCORE.
    grant = parse_command_text(f"SCORE {WORKERS[0]}", max_workers=1)
    assert isinstance(grant, GrantSpec) and grant.qualification_type_id == "SCORE"
    for text, expected in (
        ("holders", "Name the qualification type"),
        (f"holders {QUAL} {WORKERS[0]}", "takes the type alone"),
        (f"score {QUAL}", "one worker ID"),
        (f"score {QUAL} a1lower", "Not MTurk worker IDs: `a1lower`"),
    ):
        with pytest.raises(InvalidRequest) as raised:
            parse_command_text(text, max_workers=1)
        assert expected in raised.value.errors[Field.COMMAND], text


TYPES = [
    QualificationTypeInfo("3AAA", "Passed screener", "Active"),
    QualificationTypeInfo("3BBB", "Screener v2", "Active"),
    QualificationTypeInfo("3CCC", "Passed  SCREENER", "Active"),
    QualificationTypeInfo("3SCREEN", "Other", "Active"),
]


def test_resolving_prefers_an_exact_name_then_the_id() -> None:
    assert resolve_type("screener V2", TYPES, "SANDBOX").qualification_type_id == "3BBB"
    assert resolve_type("3AAA", TYPES, "SANDBOX").qualification_type_id == "3AAA"
    named_like_an_id = [*TYPES, QualificationTypeInfo("3DDD", "3AAA", "Active")]
    assert resolve_type("3AAA", named_like_an_id, "SANDBOX").qualification_type_id == "3DDD"
    with pytest.raises(InvalidRequest) as ambiguous:
        resolve_type("passed screener", TYPES, "PRODUCTION")
    assert "2 qualification types of this account in the PRODUCTION" in ambiguous.value.errors[Field.QUALIFICATION_TYPE]
    assert normalise_name("  A \t b ") == "a b"
    assert [t.qualification_type_id for t in close_names("screen", TYPES)] == ["3BBB", "3AAA", "3CCC"]


def test_picker_matching_ranks_exact_then_prefix_then_contains() -> None:
    assert [t.qualification_type_id for t in matching_types("", TYPES)] == ["3SCREEN", "3AAA", "3CCC", "3BBB"]
    assert [t.qualification_type_id for t in matching_types("screener v2", TYPES)] == ["3BBB"]
    # "scr": Screener v2 starts with it, 3SCREEN's ID contains it, the Passed screeners contain it.
    ranked = [t.qualification_type_id for t in matching_types("scr", TYPES)]
    assert ranked[0] == "3BBB" and set(ranked) == {"3AAA", "3BBB", "3CCC", "3SCREEN"}
    assert [t.qualification_type_id for t in matching_types("3s", TYPES)] == ["3SCREEN"]
