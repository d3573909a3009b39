"""Pure logic: turning typed text into a GrantSpec, and the errors users see."""

from __future__ import annotations

import pytest

from bot.requests import (
    Field,
    GrantSpec,
    HelpWanted,
    InvalidRequest,
    ModalWanted,
    WorkerTarget,
    parse_command_text,
    parse_integer_value,
    split_worker_ids,
)

QUAL = "3QUALTYPE00000000001"


def parse(text: str, max_workers: int = 100) -> GrantSpec:
    result = parse_command_text(text, max_workers=max_workers)
    assert isinstance(result, GrantSpec)
    return result


def test_empty_and_help() -> None:
    assert parse_command_text("  ", max_workers=5) == ModalWanted()
    assert parse_command_text("help", max_workers=5) == HelpWanted()


def test_full_line() -> None:
    spec = parse(f"{QUAL} A1AAA,A2BBB\nA3CCC A1AAA value=-5 notify=no reason=  screened <@U1> & co  ")
    assert spec.qualification_type_id == QUAL
    assert spec.workers == (WorkerTarget("A1AAA", -5), WorkerTarget("A2BBB", -5), WorkerTarget("A3CCC", -5))
    assert spec.send_notification is False
    assert spec.reason == "screened <@U1> & co"


def test_defaults_follow_the_api() -> None:
    spec = parse(f"{QUAL} A1AAA")
    assert spec.workers == (WorkerTarget("A1AAA", None),) and spec.send_notification is True


def test_reason_takes_rest_of_line_only() -> None:
    spec = parse(f"{QUAL} A1AAA reason=first line value=3\nA2BBB")
    assert spec.reason == "first line value=3"
    assert [w.worker_id for w in spec.workers] == ["A1AAA", "A2BBB"]


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (f"{QUAL}", Field.WORKERS, "at least one worker"),
        (f"{QUAL} a1lower", Field.WORKERS, "`a1lower`"),
        (f"{QUAL} B1234", Field.WORKERS, "`B1234`"),
        (f"{QUAL} A", Field.WORKERS, "`A`"),
        (f"{QUAL} A{'1' * 64}", Field.WORKERS, "Not MTurk worker IDs"),
        ("3qual A1AAA", Field.QUALIFICATION_TYPE, "not a qualification type ID"),
        (f"{'3' * 65} A1AAA", Field.QUALIFICATION_TYPE, "not a qualification type ID"),
        (f"{QUAL} A1AAA value=1.5", Field.VALUE, "not a whole number"),
        (f"{QUAL} A1AAA value=2147483648", Field.VALUE, "not a whole number"),
        (f"{QUAL} A1AAA notify=maybe", Field.NOTIFY, "yes or no"),
        (f"{QUAL} A1AAA colour=red", Field.COMMAND, "Unknown option"),
    ],
)
def test_errors_name_the_problem(text: str, field: Field, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_command_text(text, max_workers=100)
    assert fragment in caught.value.errors[field]


def test_every_bad_worker_is_named_with_a_count_past_ten() -> None:
    bad = [f"x{i}" for i in range(12)]
    with pytest.raises(InvalidRequest) as caught:
        parse(f"{QUAL} A1GOOD {' '.join(bad)}")
    message = caught.value.errors[Field.WORKERS]
    assert all(f"`{b}`" in message for b in bad[:10]) and "and 2 more" in message


def test_too_many_workers() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(f"{QUAL} " + " ".join(f"A{i:05d}" for i in range(11)), max_workers=10)
    assert "more than the 10" in caught.value.errors[Field.WORKERS]


def test_split_worker_ids_dedupes_keeping_order() -> None:
    assert split_worker_ids(" A2, A1\n\nA2;A3\tA1 ") == ["A2", "A1", "A3"]


def test_integer_value_bounds() -> None:
    assert parse_integer_value("") is None
    assert parse_integer_value(" -2147483648 ") == -(2**31)
    assert parse_integer_value("+42") == 42


def test_regrant_option() -> None:
    assert parse(f"{QUAL} A1AAAA value=3").regrant is False
    assert parse(f"{QUAL} A1AAAA value=3 regrant=yes").regrant is True
    assert parse(f"{QUAL} A1AAAA REGRANT=no").regrant is False
    with pytest.raises(InvalidRequest) as raised:
        parse(f"{QUAL} A1AAAA regrant=maybe")
    assert raised.value.errors[Field.COMMAND] == "regrant= takes yes or no, not `maybe`."
