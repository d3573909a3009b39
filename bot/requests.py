"""The domain: what a grant request is, and turning what people type into a validated GrantSpec.

Constraints follow botocore's MTurk service model for AssociateQualificationWithWorker, whose patterns and
maxima boto3 does not check client-side: WorkerId `^A[A-Z0-9]+$` and QualificationTypeId `^[A-Z0-9]+$`,
1 to 64 characters; IntegerValue is an Integer (32-bit signed on the wire).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

WORKER_ID_PATTERN = re.compile(r"A[A-Z0-9]{1,63}")
QUALIFICATION_TYPE_ID_PATTERN = re.compile(r"[A-Z0-9]{1,64}")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_REASON_CHARS = 3000
_SEPARATORS = re.compile(r"[\s,;]+")
_SHOWN_BAD_IDS = 10

USAGE = (
    "/grant-qual <QUALIFICATION_TYPE_ID> <WORKER_ID> [<WORKER_ID> ...] [value=<N>] [notify=no] "
    "[regrant=yes] [expires=<30d, 12h, 8w or 2027-03-01>] [reason=<text to end of line>]"
)
REVOKE_USAGE = (
    '/grant-qual revoke <QUALIFICATION_TYPE_ID or "name"> <WORKER_ID> [<WORKER_ID> ...] '
    "[reason=<internal text>] [message=<text sent to the workers>]"
)
MAX_WORKER_MESSAGE_CHARS = 1000
CANCEL_USAGE = "/grant-qual cancel <REQUEST_NUMBER>"


class Field(StrEnum):
    """The parts of a request a validation error can point at (the modal maps them to its inputs)."""

    QUALIFICATION_TYPE = "qualification_type"
    WORKERS = "workers"
    WORKERS_FILE = "workers_file"
    VALUE = "value"
    NOTIFY = "notify"
    REASON = "reason"
    WORKER_MESSAGE = "worker_message"
    EXPIRES = "expires"
    COMMAND = "command"


class InvalidRequest(Exception):
    """What the user typed cannot become a request; `errors` says what, per field, in the user's terms."""

    def __init__(self, errors: dict[Field, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class RequestState(StrEnum):
    # Stored, its change being read from MTurk (the preview); not shown to approvers yet, no buttons.
    PREVIEWING = "previewing"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    GRANTING = "granting"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by its requester, while pending
    EXPIRED = "expired"  # nobody decided within REQUEST_TTL_HOURS

    @property
    def is_final(self) -> bool:
        return self in {
            RequestState.REJECTED,
            RequestState.DONE,
            RequestState.FAILED,
            RequestState.CANCELLED,
            RequestState.EXPIRED,
        }


# A failed worker's error code when MTurk never said whether a grant call landed: they may hold it already.
OUTCOME_UNKNOWN = "OutcomeUnknown"


class WorkerStatus(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"
    FAILED = "failed"
    SKIPPED = "skipped"  # already held the score at the preview: not called (unless the request says regrant)


class EventKind(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    FINISHED = "finished"
    RETRY_APPROVED = "retry_approved"
    # A process running in the other MTurk environment left the request as it is (recorded once per request).
    ENVIRONMENT_MISMATCH = "environment_mismatch"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REMINDED = "reminded"  # the approvers were reminded of a request still pending (recorded once per request)
    APPROVAL_ADDED = "approval_added"  # one approval of several needed: the request stays pending
    UNDO_REQUESTED = "undo_requested"  # on the original: a request undoing it was made (recorded once per request)
    # Grants that expire (bot/expiry.py). On the original: its requester told a day before (once), a new expiry.
    EXPIRY_NOTICE = "expiry_notice"
    EXPIRY_EXTENDED = "expiry_extended"
    # On the expiry request: it was stored approved (the original's approval covered the expiry), once.
    EXPIRY_STARTED = "expiry_started"


class DeliveryState(StrEnum):
    """Whether the people concerned have been told about an event (in Slack, by the Slack layer)."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class RequestEvent:
    """Something that happened to a request: recorded with the change itself, then told to people."""

    id: int
    request_id: int
    kind: EventKind
    actor_id: str | None
    created_at: datetime
    delivery_state: DeliveryState
    steps_done: frozenset[str]
    attempts: int
    last_error: str | None = None
    round: int = 1


class Operation(StrEnum):
    """What a request does to one worker: grant a score, or revoke the qualification."""

    GRANT = "grant"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class WorkerTarget:
    """One worker to change: grant the score (None: MTurk's default of 1), or revoke (integer_value None)."""

    worker_id: str
    integer_value: int | None
    operation: Operation = Operation.GRANT


@dataclass(frozen=True)
class GrantSpec:
    """A validated request, before anyone approved it."""

    qualification_type_id: str
    workers: tuple[WorkerTarget, ...]
    send_notification: bool = True
    reason: str = ""
    # The type's name as the one-line command gave it ("Passed screener"): qualification_type_id is then empty
    # until the service finds the account's type of that name.
    type_name: str = ""
    # Grant workers who already hold the score too (by default they are not called: no call, no second email).
    regrant: bool = False
    # A requester-site worker file's CURRENT-<name> column, per worker: compared with what MTurk says.
    file_current: tuple[tuple[str, int], ...] = ()
    # Revokes only: the text MTurk shows (and, given, emails) the worker as the reason; None sends nothing.
    # `reason` stays internal (the approvers and the record).
    worker_message: str | None = None
    undo_of: int | None = None  # the request this one undoes
    # Grants that expire: a duration counted from when the grant finishes its first round, or a fixed moment.
    expires_after: timedelta | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class GrantRequest:
    """A stored request and where it stands."""

    id: int
    requester_id: str
    qualification_type_id: str
    qualification_name: str | None
    send_notification: bool
    reason: str
    mturk_env: str
    state: RequestState
    worker_count: int
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    channel_id: str | None = None
    message_ts: str | None = None
    finished_at: datetime | None = None
    round: int = 1
    progress_ts: str | None = None
    summary_ts: str | None = None
    reminded_at: datetime | None = None
    # How many distinct approvers must approve, fixed when the request was made (APPROVALS_REQUIRED then).
    approvals_required: int = 1
    decision_reason: str | None = None  # the approver's reason for a rejection, as typed
    regrant: bool = False
    worker_message: str | None = None
    undo_of: int | None = None  # the request this one undoes
    undone_by: int | None = None  # the request that undoes this one (at most one)
    revoke_count: int = 0  # how many of its workers are revoked (the others are granted)
    # Grants that expire: the duration asked for (counted from the first round's end), the moment it expires (set
    # when that round ends, or given as a date), the request revoking it once it expired, the requester's notice.
    expires_after: timedelta | None = None
    expires_at: datetime | None = None
    expiry_request_id: int | None = None
    expiry_notice_at: datetime | None = None
    expiry_of: int | None = None  # on an expiry request: the request whose grant expired

    @property
    def expires(self) -> bool:
        """Whether the grant is set to expire and has not expired yet."""
        return (self.expires_after is not None or self.expires_at is not None) and self.expiry_request_id is None

    @property
    def kind_label(self) -> str:
        """What people are told the request does, loudly when it revokes: "", "REVOKE" or "GRANT AND REVOKE"."""
        if not self.revoke_count:
            return ""
        return "REVOKE" if self.revoke_count >= self.worker_count else "GRANT AND REVOKE"


@dataclass(frozen=True, slots=True)
class WorkerOutcome:
    """What happened to one worker of a request; error text is MTurk's own words."""

    worker_id: str
    integer_value: int | None
    status: WorkerStatus
    error_code: str | None = None
    error_message: str | None = None
    hint: str | None = None
    operation: Operation = Operation.GRANT


@dataclass(frozen=True)
class HelpWanted:
    """`/grant-qual help`."""


@dataclass(frozen=True)
class ModalWanted:
    """`/grant-qual` with no text."""


@dataclass(frozen=True)
class CancelWanted:
    """`/grant-qual cancel 12`: the requester withdraws their own pending request."""

    request_id: int


@dataclass(frozen=True)
class StatusLookup:
    """`/grant-qual status 12`: where one request stands."""

    request_id: int


@dataclass(frozen=True)
class HistoryLookup:
    """`/grant-qual history A1B2C3D4E5F6G7`: every request that touched one worker."""

    worker_id: str


@dataclass(frozen=True)
class MineLookup:
    """`/grant-qual mine` (or `list`): the user's recent requests and, for approvers, the pending ones."""


@dataclass(frozen=True)
class ExportLookup:
    """`/grant-qual export [since 2026-11-01 | since 30d]`: every request of the period as a CSV (approvers)."""

    since_date: date | None = None  # from 00:00 UTC that day
    last_days: int | None = None  # the last N days


Lookup = StatusLookup | HistoryLookup | MineLookup | ExportLookup
LOOKUP_WORDS = frozenset({"status", "history", "mine", "list", "export"})
EXPORT_USAGE = "`/grant-qual export`, `/grant-qual export since 2026-11-01` or `/grant-qual export since 30d`"
MAX_EXPORT_DAYS = 36_500
HELP_WORDS = frozenset({"help", "-h", "--help", "?"})


@dataclass(frozen=True)
class ScoreLookup:
    """`/grant-qual score "Passed screener" A1B2C3D4E5F6G7`: one worker's score for a type, from MTurk."""

    type_reference: str  # a name or an ID
    worker_id: str


@dataclass(frozen=True)
class HoldersLookup:
    """`/grant-qual holders "Passed screener"`: every worker who holds a type, from MTurk."""

    type_reference: str  # a name or an ID


MTurkLookup = ScoreLookup | HoldersLookup
MTURK_LOOKUP_WORDS = frozenset({"score", "holders"})
# A name is given in straight or typographic quotes (Slack's clients may turn " into “ ”).
_OPENING_QUOTES = '"“”„'
_CLOSING_QUOTES = '"”“'
MAX_TYPE_NAME_CHARS = 1000


def split_worker_ids(text: str) -> list[str]:
    """Worker IDs from any mix of newlines, commas and spaces, de-duplicated, first occurrence first."""
    return list(dict.fromkeys(part for part in _SEPARATORS.split(text) if part))


def worker_id_errors(worker_ids: Iterable[str]) -> str | None:
    """A message naming each ID that cannot be an MTurk worker ID, or None when all can."""
    bad = [w for w in worker_ids if not WORKER_ID_PATTERN.fullmatch(w)]
    if not bad:
        return None
    shown = ", ".join(f"`{w[:64]}`" for w in bad[:_SHOWN_BAD_IDS])
    more = f" and {len(bad) - _SHOWN_BAD_IDS} more" if len(bad) > _SHOWN_BAD_IDS else ""
    return (
        f"Not MTurk worker IDs: {shown}{more}. Worker IDs start with A and contain only capital letters "
        "and digits (e.g. A1B2C3D4E5F6G7)."
    )


def parse_qualification_type_id(text: str) -> str:
    value = text.strip()
    if not value:
        raise InvalidRequest({Field.QUALIFICATION_TYPE: "Enter the qualification type ID."})
    if not QUALIFICATION_TYPE_ID_PATTERN.fullmatch(value):
        raise InvalidRequest(
            {
                Field.QUALIFICATION_TYPE: f"`{value[:64]}` is not a qualification type ID: it has 1 to 64 "
                "capital letters and digits, as shown on the requester site (e.g. 3X0ABC1DEF2GHIJKLMNO)."
            }
        )
    return value


def parse_integer_value(text: str | None) -> int | None:
    """The score to grant; blank means MTurk's default (1)."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    if not re.fullmatch(r"[+-]?\d{1,10}", raw) or not INT32_MIN <= int(raw) <= INT32_MAX:
        raise InvalidRequest({Field.VALUE: f"`{raw[:40]}` is not a whole number between {INT32_MIN} and {INT32_MAX}."})
    return int(raw)


MAX_EXPIRY = timedelta(days=5 * 365)
_EXPIRY_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
EXPIRY_EXAMPLES = "30d, 12h, 8w or a date such as 2027-03-01"


def parse_expiry(text: str | None, moment: datetime) -> timedelta | datetime | None:
    """`expires=`: a duration (30d, 12h, 8w) or a date (YYYY-MM-DD: that day's 00:00 UTC), at most 5 years ahead of
    `moment`; None when blank (the grant never expires). A date must be after `moment`."""
    raw = (text or "").strip()
    if not raw:
        return None
    if match := re.fullmatch(r"(\d{1,6})\s*([hdw])", raw.lower()):
        amount = int(match.group(1)) * _EXPIRY_UNITS[match.group(2)]
        if not timedelta(0) < amount <= MAX_EXPIRY:
            raise InvalidRequest({Field.EXPIRES: f"`{raw}`: give a time from 1 hour up to 5 years."})
        return amount
    try:
        day = (
            datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw) else None
        )
    except ValueError:
        day = None
    if day is None:
        raise InvalidRequest({Field.EXPIRES: f"`{raw[:30]}` is not an expiry: give {EXPIRY_EXAMPLES}."})
    if day <= moment:
        raise InvalidRequest({Field.EXPIRES: f"{raw} is not in the future (dates are 00:00 UTC)."})
    if day - moment > MAX_EXPIRY:
        raise InvalidRequest({Field.EXPIRES: f"{raw} is more than 5 years ahead."})
    return day


def with_expiry(spec: GrantSpec, text: str | None, moment: datetime) -> GrantSpec:
    """The spec set to expire as `text` says (see parse_expiry); only a request that grants someone can expire."""
    expiry = parse_expiry(text, moment)
    if expiry is None:
        return spec
    if not any(w.operation is Operation.GRANT for w in spec.workers):
        raise InvalidRequest({Field.EXPIRES: "Only a grant can expire; a revoke takes no expiry."})
    if isinstance(expiry, timedelta):
        return replace(spec, expires_after=expiry)
    return replace(spec, expires_at=expiry)


def build_grant_spec(
    *,
    qualification_type_id: str,
    type_name: str = "",
    worker_ids: list[str],
    integer_value: str | None,
    send_notification: bool,
    reason: str,
    max_workers: int,
    file_workers: Sequence[WorkerTarget] = (),
) -> GrantSpec:
    """Validate every field at once, so the user sees all problems in one go.

    `file_workers` come from an uploaded file, already validated, each with its own score; typed IDs come
    first and a worker in both keeps the typed entry. `type_name`: the type was given by name instead of ID.
    """
    worker_ids = list(dict.fromkeys(worker_ids))  # a worker is granted once per request (the store's key)
    errors: dict[Field, str] = {}
    qualification, value = "", None
    try:
        qualification = "" if type_name else parse_qualification_type_id(qualification_type_id)
    except InvalidRequest as e:
        errors.update(e.errors)
    if len(type_name) > MAX_TYPE_NAME_CHARS:
        errors[Field.QUALIFICATION_TYPE] = f"That name has {len(type_name)} characters; no type's name is so long."
    try:
        value = parse_integer_value(integer_value)
    except InvalidRequest as e:
        errors.update(e.errors)
    typed = set(worker_ids)
    extra = [t for t in file_workers if t.worker_id not in typed]
    if worker_error := _workers_error(worker_ids, len(worker_ids) + len(extra), max_workers, has_file=bool(extra)):
        errors[Field.WORKERS] = worker_error
    if len(reason) > MAX_REASON_CHARS:
        errors[Field.REASON] = f"The reason is {len(reason)} characters; keep it under {MAX_REASON_CHARS}."
    if errors:
        raise InvalidRequest(errors)
    workers = tuple(WorkerTarget(w, value) for w in worker_ids) + tuple(extra)
    # NUL is invisible, and PostgreSQL's text type cannot store it.
    return GrantSpec(qualification, workers, send_notification, reason.replace("\x00", "").strip(), type_name)


def _workers_error(worker_ids: list[str], total: int, max_workers: int, *, has_file: bool) -> str | None:
    if not worker_ids and not has_file:
        return "Enter at least one worker ID."
    if total > max_workers:
        return f"{total} workers is more than the {max_workers} one request may hold; split the list."
    return worker_id_errors(worker_ids)


def parse_command_text(
    text: str, *, max_workers: int
) -> GrantSpec | HelpWanted | ModalWanted | Lookup | MTurkLookup | CancelWanted:
    """Parse `/grant-qual` text: empty opens the modal, `help` shows usage, a look-up word asks something,
    `cancel` withdraws a request, anything else is a request."""
    stripped = text.strip()
    if not stripped:
        return ModalWanted()
    if stripped.lower() in HELP_WORDS:
        return HelpWanted()
    if (lookup := parse_lookup(stripped)) is not None:
        return lookup
    if (mturk_lookup := parse_mturk_lookup(stripped)) is not None:
        return mturk_lookup
    if (cancel := _parse_cancel(stripped)) is not None:
        return cancel
    if (revoke := _parse_revoke(stripped, max_workers=max_workers)) is not None:
        return revoke
    type_name, stripped = _take_quoted_name(stripped)
    words, reason = _split_reason(stripped)
    options = {"value": None, "notify": "yes", "regrant": "no", "expires": ""}
    positional: list[str] = []
    errors: dict[Field, str] = {}
    for word in _SEPARATORS.split(words):
        key, eq, val = word.partition("=")
        if not word:
            continue
        if not eq:
            positional.append(word)
        elif key.lower() in options:
            options[key.lower()] = val
        else:
            errors[Field.COMMAND] = (
                f"Unknown option `{key[:30]}=`; options are value=, notify=, regrant=, expires= and reason="
            )
    notify = _parse_notify(options["notify"] or "", errors)
    regrant = _parse_yes_no(options["regrant"] or "", "regrant", errors, default=False)
    if type_name is None and not positional:
        errors[Field.QUALIFICATION_TYPE] = "Give the qualification type ID first, then the worker IDs."
    if type_name is not None:
        positional.insert(0, "")  # the type's place, taken by the name
    try:
        spec = build_grant_spec(
            qualification_type_id=positional[0] if positional else "",
            type_name=type_name or "",
            worker_ids=list(dict.fromkeys(positional[1:])),
            integer_value=options["value"],
            send_notification=notify,
            reason=reason,
            max_workers=max_workers,
        )
    except InvalidRequest as e:
        if type_name is None and Field.QUALIFICATION_TYPE in e.errors and positional and positional[0]:
            e.errors[Field.QUALIFICATION_TYPE] += ' A type\'s name goes in quotes: "Passed screener".'
        raise InvalidRequest({**e.errors, **errors}) from None
    try:
        spec = with_expiry(spec, options["expires"], datetime.now(UTC))
    except InvalidRequest as e:
        errors.update(e.errors)
    if errors:
        raise InvalidRequest(errors)
    return replace(spec, regrant=regrant)


def _parse_cancel(text: str) -> CancelWanted | None:
    """`cancel 12` or `cancel #12`; None when the text is not a cancel command.

    The word is matched in any case but all capitals: `CANCEL` could be a qualification type ID.
    """
    word, *rest = text.split(maxsplit=1)
    if word.lower() != "cancel" or QUALIFICATION_TYPE_ID_PATTERN.fullmatch(word):
        return None
    given = rest[0].strip() if rest else ""
    number = given.removeprefix("#")
    if not (number.isascii() and number.isdigit() and len(number) <= 18):  # "²".isdigit() is true
        got = f"; not `{given[:30]}`" if given else ""
        raise InvalidRequest({Field.COMMAND: f"cancel takes one request number, e.g. `/grant-qual cancel 12`{got}."})
    return CancelWanted(int(number))


def _parse_revoke(text: str, *, max_workers: int) -> GrantSpec | None:
    """`revoke <type> <worker> … [reason=<internal text>] [message=<text sent to the workers>]`; None when the
    text is not a revoke. The word is matched in any case but all capitals (`REVOKE` could be a type ID)."""
    word, *rest = text.split(maxsplit=1)
    if word.lower() != "revoke" or QUALIFICATION_TYPE_ID_PATTERN.fullmatch(word):
        return None
    type_name, remainder = _take_quoted_name(rest[0].strip() if rest else "")
    words, texts = _split_texts(remainder, ("reason", "message"))
    positional = [w for w in _SEPARATORS.split(words) if w]
    errors: dict[Field, str] = {}
    if unknown := [w for w in positional if "=" in w]:
        errors[Field.COMMAND] = (
            f"Unknown option `{unknown[0].partition('=')[0][:30]}=`; a revoke takes reason= (internal) and message= "
            "(sent to the workers)."
        )
        positional = [w for w in positional if "=" not in w]
    if type_name is None and not positional:
        errors[Field.QUALIFICATION_TYPE] = f"Give the qualification type, then the worker IDs: `{REVOKE_USAGE}`."
    if type_name is not None:
        positional.insert(0, "")
    message = texts.get("message", "").replace("\x00", "").strip()
    if len(message) > MAX_WORKER_MESSAGE_CHARS:
        errors[Field.WORKER_MESSAGE] = (
            f"The message to workers is {len(message)} characters; keep it under {MAX_WORKER_MESSAGE_CHARS}."
        )
    try:
        spec = build_grant_spec(
            qualification_type_id=positional[0] if positional else "",
            type_name=type_name or "",
            worker_ids=positional[1:],
            integer_value=None,
            send_notification=bool(message),
            reason=texts.get("reason", ""),
            max_workers=max_workers,
        )
    except InvalidRequest as e:
        raise InvalidRequest({**e.errors, **errors}) from None
    if errors:
        raise InvalidRequest(errors)
    return as_revoke(spec, message or None)


def as_revoke(spec: GrantSpec, worker_message: str | None) -> GrantSpec:
    """The same workers revoked instead of granted; `worker_message` is what MTurk sends them (None: nothing)."""
    workers = tuple(WorkerTarget(w.worker_id, None, Operation.REVOKE) for w in spec.workers)
    return replace(spec, workers=workers, worker_message=worker_message, send_notification=bool(worker_message))


def with_revokes(spec: GrantSpec, *, revoke_all: bool, worker_message: str) -> GrantSpec:
    """The form's choice applied: every worker revoked (`revoke_all`), or the file's `Revoke` rows only; the
    message to workers goes with revokes alone (InvalidRequest otherwise)."""
    message = worker_message.replace("\x00", "").strip()
    if len(message) > MAX_WORKER_MESSAGE_CHARS:
        raise InvalidRequest(
            {
                Field.WORKER_MESSAGE: f"The message to workers is {len(message)} characters; keep it under "
                f"{MAX_WORKER_MESSAGE_CHARS}."
            }
        )
    if revoke_all:
        return as_revoke(spec, message or None)
    if not any(w.operation is Operation.REVOKE for w in spec.workers):
        if message:
            raise InvalidRequest(
                {Field.WORKER_MESSAGE: "The message to workers goes with a revoke; choose Revoke, or leave it empty."}
            )
        return spec
    return replace(spec, worker_message=message or None)


def _split_texts(text: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Options that take free text (`reason=`, `message=`): each runs to the next such option or the end of its
    line; the words outside them come back for parsing."""
    pattern = re.compile(r"(?:^|(?<=\s))(" + "|".join(names) + r")=", flags=re.IGNORECASE)
    found = list(pattern.finditer(text))
    if not found:
        return text, {}
    texts: dict[str, str] = {}
    words = [text[: found[0].start()]]
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        body = text[match.end() : end]
        line, newline, after = body.partition("\n")
        texts[match.group(1).lower()] = line.strip()
        words.append(after if newline else "")
    return "\n".join(words), texts


def is_lookup(text: str) -> bool:
    """Whether `text` starts with a look-up word (status, history, mine, list) in any case but all capitals:
    "STATUS" could be a qualification type ID (capitals and digits), "status" and "Status" cannot."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    return first.lower() in LOOKUP_WORDS and first != first.upper()


def parse_lookup(text: str) -> Lookup | None:
    """A look-up, None when `text` is not one; InvalidRequest (Field.COMMAND) when its argument is wrong."""
    if not is_lookup(text):
        return None
    word, *arguments = text.split()
    word = word.lower()
    if word in {"mine", "list"}:
        if arguments:
            raise InvalidRequest({Field.COMMAND: f"`{word}` takes nothing after it: `/grant-qual {word}`."})
        return MineLookup()
    if word == "export":
        return _parse_export(arguments)
    if word == "status":
        match = re.fullmatch(r"#?(\d{1,18})", arguments[0]) if len(arguments) == 1 else None
        if match is None:
            raise InvalidRequest({Field.COMMAND: "Give one request number: `/grant-qual status 12`."})
        return StatusLookup(int(match.group(1)))
    if len(arguments) != 1:
        raise InvalidRequest({Field.COMMAND: "Give one worker ID: `/grant-qual history A1B2C3D4E5F6G7`."})
    if problem := worker_id_errors(arguments):
        raise InvalidRequest({Field.COMMAND: problem})
    return HistoryLookup(arguments[0])


def _parse_export(arguments: list[str]) -> ExportLookup:
    """Nothing, `since YYYY-MM-DD` or `since Nd`."""
    if not arguments:
        return ExportLookup()
    if len(arguments) != 2 or arguments[0].lower() != "since":
        raise InvalidRequest({Field.COMMAND: f"Export takes nothing, or a start: {EXPORT_USAGE}."})
    given = arguments[1]
    if days := re.fullmatch(r"(\d{1,6})d", given, re.IGNORECASE):
        if not 1 <= int(days.group(1)) <= MAX_EXPORT_DAYS:
            raise InvalidRequest({Field.COMMAND: f"Give 1 to {MAX_EXPORT_DAYS} days: {EXPORT_USAGE}."})
        return ExportLookup(last_days=int(days.group(1)))
    try:
        since = date.fromisoformat(given) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", given) else None
    except ValueError:
        since = None
    if since is None:
        raise InvalidRequest(
            {
                Field.COMMAND: f"`{given[:30]}` is not a date like 2026-11-01 or a number of days like "
                f"30d: {EXPORT_USAGE}."
            }
        )
    return ExportLookup(since_date=since)


def is_mturk_lookup(text: str) -> bool:
    """Whether `text` starts with `score` or `holders` in any case but all capitals ("SCORE" could be a type ID)."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    return first.lower() in MTURK_LOOKUP_WORDS and first != first.upper()


def parse_mturk_lookup(text: str) -> MTurkLookup | None:
    """`score <type> <worker>` or `holders <type>`, the type a "quoted name" or an ID; None when `text` is
    neither; InvalidRequest (Field.COMMAND) when what follows the word is wrong."""
    if not is_mturk_lookup(text):
        return None
    text = text.strip()
    first = text.split(maxsplit=1)[0]
    word = first.lower()
    rest = text[len(first) :].strip()
    example = '"Passed screener" A1B2C3D4E5F6G7' if word == "score" else '"Passed screener"'
    usage = f"`/grant-qual {word} {example}` (a type's name in quotes, or its ID)"
    quoted, rest = _take_quoted_name(rest)
    if quoted is None:
        reference, *arguments = rest.split() or [""]
    else:
        reference, arguments = quoted, rest.split()
    if not reference.strip():
        raise InvalidRequest({Field.COMMAND: f"Name the qualification type: {usage}."})
    if len(reference) > MAX_TYPE_NAME_CHARS:
        raise InvalidRequest({Field.COMMAND: f"That name has {len(reference)} characters; no type's name is so long."})
    if word == "holders":
        if arguments:
            raise InvalidRequest({Field.COMMAND: f"`holders` takes the type alone: {usage}."})
        return HoldersLookup(reference.strip())
    if len(arguments) != 1:
        raise InvalidRequest({Field.COMMAND: f"Give the type, then one worker ID: {usage}."})
    if problem := worker_id_errors(arguments):
        raise InvalidRequest({Field.COMMAND: problem})
    return ScoreLookup(reference.strip(), arguments[0])


def _take_quoted_name(text: str) -> tuple[str | None, str]:
    """A leading "quoted name" and the text after it; (None, text) when `text` does not start with a quote."""
    if not text or text[0] not in _OPENING_QUOTES:
        return None, text
    end = next((i for i, c in enumerate(text[1:], 1) if c in _CLOSING_QUOTES), None)
    if end is None:
        raise InvalidRequest({Field.QUALIFICATION_TYPE: 'The type\'s name has no closing quote: "Passed screener".'})
    name = text[1:end].strip()
    if not name:
        raise InvalidRequest({Field.QUALIFICATION_TYPE: 'The quotes hold no name: "Passed screener".'})
    return name, text[end + 1 :]


def _split_reason(text: str) -> tuple[str, str]:
    """`reason=` takes the rest of its line; later lines are parsed as more words."""
    match = re.search(r"(?:^|\s)reason=([^\n]*)", text, flags=re.IGNORECASE)
    if not match:
        return text, ""
    return text[: match.start()] + "\n" + text[match.end() :], match.group(1).strip()


def _parse_notify(raw: str, errors: dict[Field, str]) -> bool:
    return _parse_yes_no(raw, "notify", errors, default=True)


def _parse_yes_no(raw: str, option: str, errors: dict[Field, str], *, default: bool) -> bool:
    lowered = raw.lower()
    if lowered in {"yes", "true", "on", "1"} or (not lowered and default):
        return True
    if lowered in {"no", "false", "off", "0", ""}:
        return False
    field = Field.NOTIFY if option == "notify" else Field.COMMAND
    errors[field] = f"{option}= takes yes or no, not `{raw[:20]}`."
    return default
