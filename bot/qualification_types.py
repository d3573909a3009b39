"""Finding a qualification type among the account's own by what a person typed: its name or its ID.

Pure functions over the list the gateway returns (ListQualificationTypes, MustBeOwnedByCaller): no MTurk
calls and no Slack here. Names are compared case-insensitively with whitespace runs made one space, as a
person remembers them; IDs exactly, as MTurk issues them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.mturk import QualificationTypeInfo
from bot.requests import QUALIFICATION_TYPE_ID_PATTERN, Field, InvalidRequest

SHOWN_CANDIDATES = 10
SHOWN_SUGGESTIONS = 5
NAME_SHOWN_CHARS = 100  # a name in a message; names are MTurk text, escaped later by whoever shows them
_WHITESPACE = re.compile(r"\s+")


def normalise_name(name: str) -> str:
    """A name as compared: case folded, whitespace runs made one space, none at the ends."""
    return _WHITESPACE.sub(" ", name).strip().casefold()


def resolve_type(typed: str, types: Sequence[QualificationTypeInfo], env_label: str) -> QualificationTypeInfo:
    """The type `typed` names: an exact name match wins, else an exact ID match.

    InvalidRequest (on the qualification type) when several types have that name, listing them with their
    IDs, or when none matches, suggesting names that start with or contain what was typed.
    """
    wanted = normalise_name(typed)
    named = [t for t in types if normalise_name(t.name) == wanted]
    if len(named) == 1:
        return named[0]
    if named:
        listed = ", ".join(_described(t) for t in _by_name(named)[:SHOWN_CANDIDATES])
        more = f" and {len(named) - SHOWN_CANDIDATES} more" if len(named) > SHOWN_CANDIDATES else ""
        raise InvalidRequest(
            {
                Field.QUALIFICATION_TYPE: f"{len(named)} qualification types of this account in the {env_label} "
                f"are named “{_cut(typed)}”: {listed}{more}. Give the ID of the one you mean."
            }
        )
    by_id = next((t for t in types if t.qualification_type_id == typed.strip()), None)
    if by_id is not None:
        return by_id
    # Something shaped like an ID may have been meant as one (from the other environment, say).
    nor_id = " (nor with that ID)" if QUALIFICATION_TYPE_ID_PATTERN.fullmatch(typed.strip()) else ""
    message = (
        f"No qualification type named “{_cut(typed)}”{nor_id} was created by this requester account in the {env_label}."
    )
    if close := close_names(typed, types):
        message += " Did you mean " + ", ".join(_described(t) for t in close) + "?"
    else:
        message += " Check the name on the requester site (Manage → Qualification Types), or give its ID."
    raise InvalidRequest({Field.QUALIFICATION_TYPE: message})


def close_names(typed: str, types: Sequence[QualificationTypeInfo]) -> list[QualificationTypeInfo]:
    """Types whose name starts with, then contains, what was typed (or is contained in it)."""
    wanted = normalise_name(typed)
    if not wanted:
        return []
    starts = [t for t in types if normalise_name(t.name).startswith(wanted)]
    contains = [
        t
        for t in types
        if t not in starts
        and (wanted in normalise_name(t.name) or normalise_name(t.name) in wanted)
        and normalise_name(t.name)
    ]
    return (_by_name(starts) + _by_name(contains))[:SHOWN_SUGGESTIONS]


def matching_types(typed: str, types: Sequence[QualificationTypeInfo]) -> list[QualificationTypeInfo]:
    """The types a picker shows for what has been typed so far: those whose name or ID contains it (all when
    nothing is typed). Exact matches first, then names or IDs that start with it, then the rest; each group
    by name."""
    wanted = normalise_name(typed)
    wanted_id = typed.strip().upper()

    def rank(t: QualificationTypeInfo) -> int | None:
        name, type_id = normalise_name(t.name), t.qualification_type_id
        if not wanted or name == wanted or type_id == wanted_id:
            return 0
        if name.startswith(wanted) or type_id.startswith(wanted_id):
            return 1
        if wanted in name or wanted_id in type_id:
            return 2
        return None

    ranked = [(r, t) for t in types if (r := rank(t)) is not None]
    ranked.sort(key=lambda item: (item[0], normalise_name(item[1].name), item[1].qualification_type_id))
    return [t for _, t in ranked]


def _by_name(types: Sequence[QualificationTypeInfo]) -> list[QualificationTypeInfo]:
    return sorted(types, key=lambda t: (normalise_name(t.name), t.qualification_type_id))


def _described(t: QualificationTypeInfo) -> str:
    return f"“{_cut(t.name)}” (`{t.qualification_type_id}`)"


def _cut(text: str) -> str:
    text = text.strip()
    return text if len(text) <= NAME_SHOWN_CHARS else text[: NAME_SHOWN_CHARS - 1] + "…"
