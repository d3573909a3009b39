"""Turning the lines of an uploaded file (read by bot/text_file.py) into the workers to grant: CSV or plain-list
parsing, and checking every row, with each problem reported by its line number.

This module owns what a worker file may look like. Lab managers upload what MTurk's requester site exports:
a batch results CSV (one row per assignment, a `WorkerId` column), the requester site's worker file
(`Worker ID`, `UPDATE-<qualification name>` and other columns), or a plain list of IDs, often re-saved by Excel.
It is pure: no Slack, no network, no database. Validation of the worker IDs and scores follows bot.requests.
"""

from __future__ import annotations

import csv
import itertools
import re
import unicodedata
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from bot.requests import INT32_MAX, INT32_MIN, WORKER_ID_PATTERN, Operation, WorkerTarget
from bot.text_file import LineReader, UnreadableFile, decoded_lines

# A cell holding an ID in the wrong case still "looks like" an ID: it decides plain mode, and earns a hint.
_WORKER_ID_ANY_CASE = re.compile(WORKER_ID_PATTERN.pattern, re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?\d{1,10}")
_PLAIN_SEPARATORS = re.compile(r"[\s,;]+")
# Excel writes this first line when told which delimiter to use ("sep=;"); it is not the header.
_EXCEL_SEP_LINE = re.compile(r'"?sep=([,;\t|])"?', re.IGNORECASE)
_DELIMITERS = (",", "\t", ";")
_NOT_IN_NAME = frozenset(',\t;"')
_CURRENT_PREFIX = "current-"
_UPDATE_PREFIX = "update-"
_QUOTES = "\"'`“”‘’"

_SHOWN_VALUE_CHARS = 40
# A header record may span lines (a quoted column name with line breaks, as Excel allows), but not many: the
# search reads at most this many lines from each line it tries, or a file of comment lines that each open a
# quote would be read to its end from every one of them (a 120 KB file took 30 s, a 5 MB one hours).
_HEADER_MAX_LINES = 10
_SHOWN_COLUMNS = 8
_MAX_ERROR_CHARS = 300
_SUMMARY_BUDGET = 1400  # Slack shows inline modal errors in full; a wall of text there helps no one
# Spelled-out problems kept per file: far more than anyone reads, and a bound on memory for a 5 MB file of junk.
_MAX_LISTED_ERRORS = 1000


@dataclass(frozen=True)
class WorkerFile:
    """The workers a file asks to grant, and what it looked like (for the requester to check before submitting)."""

    workers: tuple[WorkerTarget, ...]  # de-duplicated, in file order
    per_worker_values: bool  # True when the scores came from an UPDATE- column
    skipped_rows: int  # rows with a blank UPDATE- cell: the requester site's way of saying "no change"
    description: str  # e.g. "WorkerId column, 2,000 workers"
    # The CURRENT-<qualification> column's scores (the file's view of what workers hold), when it has one: the
    # preview compares them with what MTurk says, since the file may be stale.
    current_values: tuple[tuple[str, int], ...] = ()


class WorkerFileError(Exception):
    """The file cannot be used; `errors` says why, naming the line of each problem, in the uploader's terms."""

    def __init__(self, errors: list[str], *, unlisted: int = 0) -> None:
        self.errors = list(errors)
        self.unlisted = unlisted  # further problems counted but not spelled out (a file of junk has millions)
        super().__init__(self.summary())

    def summary(self, limit: int = 10) -> str:
        """The first `limit` problems in one short paragraph, for the modal's inline error under the file input."""
        shown: list[str] = []
        used = 0
        for error in self.errors[: max(limit, 1)]:
            clipped = _clip(error, _MAX_ERROR_CHARS)
            if shown and used + len(clipped) + 2 > _SUMMARY_BUDGET:
                break
            shown.append(clipped)
            used += len(clipped) + 2
        text = "; ".join(shown)
        more = len(self.errors) - len(shown) + self.unlisted
        if more:
            text += f" … and {more:,} more {_plural(more, 'problem')}"
        return text


def parse_worker_file(
    content: bytes,
    *,
    default_value: int | None,
    qualification_name: str | None,
    max_workers: int,
    filename: str = "",
) -> WorkerFile:
    """The workers to grant from an uploaded file, or WorkerFileError listing every problem found.

    `default_value` is each worker's score unless the file has an UPDATE- column; only the UPDATE- column named
    for `qualification_name` is used (a file with UPDATE- columns but not that one is refused); `filename` only
    sharpens the message for a file that is not text.
    """
    try:
        lines = LineReader(decoded_lines(content, filename))
    except UnreadableFile as error:
        raise WorkerFileError([str(error)]) from None
    forced: str | None = None
    seen_text = False
    for line in lines.each():
        stripped = line.strip()
        if not stripped:
            continue
        if not seen_text and (sep := _EXCEL_SEP_LINE.fullmatch(stripped)):
            forced = sep.group(1)
            seen_text = True
            continue
        seen_text = True
        comment = stripped.startswith("#")
        # A comment is sniffed as a header only if it could name the column, so a file of a million comment
        # lines is not parsed three million times ("#" can start a CSV column name, e.g. a row-number column).
        if (not comment or "workerid" in _normalized(stripped)) and (
            delimiter := _header_delimiter(lines, line, forced)
        ) is not None:
            return _parse_csv(
                lines,
                delimiter,
                default_value=default_value,
                qualification_name=qualification_name,
                max_workers=max_workers,
            )
        if comment:
            continue  # a comment above a plain list
        _reject_header_without_worker_column(line, forced)
        return _parse_plain(lines, default_value=default_value, max_workers=max_workers)
    raise WorkerFileError(["the file has no worker IDs" if seen_text else "the file is empty"])


def _header_delimiter(lines: LineReader, line: str, forced: str | None) -> str | None:
    """The delimiter under which the record starting at this line (the one stood on) names a worker ID column.

    Each delimiter is tried in turn, rather than guessed from which characters occur, so that a quoted
    column name containing a comma does not hide a semicolon-separated header.
    """
    for delimiter in (forced,) if forced else _DELIMITERS:
        header = itertools.islice(lines.ahead(), _HEADER_MAX_LINES)
        if _worker_column(_split_header(header, line, delimiter)) is not None:
            return delimiter
    return None


def _reject_header_without_worker_column(line: str, forced: str | None) -> None:
    """Refuse a first line that is a header of some other table, rather than reading its words as worker IDs."""
    present = [d for d in ((forced,) if forced else _DELIMITERS) if d in line]
    if not present:
        return
    first = _PLAIN_SEPARATORS.split(line.strip(), maxsplit=1)[0].strip(_QUOTES)
    if _WORKER_ID_ANY_CASE.fullmatch(first):
        return  # IDs separated by commas or tabs, with no header: a plain list
    cells = _split_header([line], line, present[0])
    shown = ", ".join(_cleaned(c.strip(), 30) for c in cells[:_SHOWN_COLUMNS])
    if len(cells) > _SHOWN_COLUMNS:
        shown += f", … ({len(cells) - _SHOWN_COLUMNS} more)"
    raise WorkerFileError(
        [f"no WorkerId column; columns are: {shown}. Add a column named WorkerId, or upload one ID per line"]
    )


def _split_header(lines: Iterable[str], first: str, delimiter: str) -> list[str]:
    """The cells of the record starting at `first`, the first of `lines`; a header cell may span lines, as Excel
    allows."""
    # Lenient here: this only looks for the column; the strict reading of the whole file reports bad quoting.
    try:
        return next(csv.reader(lines, delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error:  # a header cell beyond csv.field_size_limit is no column name
        return [first[:_SHOWN_VALUE_CHARS]]


def _worker_column(header: list[str]) -> int | None:
    for index, name in enumerate(header):
        # "WorkerId" (batch results), "Worker ID" (requester site's worker file), "worker_id", "workerid".
        # A name holding a delimiter or quote is a header split at the wrong delimiter, not a column name.
        if _normalized(name) == "workerid" and not set(name) & _NOT_IN_NAME:
            return index
    return None


def _normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _update_column(header: list[str], qualification_name: str | None) -> int | None:
    """The UPDATE-<qualification> column whose scores to grant, None when the file has no UPDATE- column.

    Only the column named for this qualification counts, even when it is the file's only UPDATE- column:
    a worker file downloaded for another qualification would otherwise grant that one's scores here.
    """
    # "UPDATE BlockStatus" (no hyphen) is the requester site's blocking column, not a score.
    updates = [i for i, name in enumerate(header) if name.strip().lower().startswith(_UPDATE_PREFIX)]
    if not updates:
        return None
    wanted = (qualification_name or "").strip()
    matching = [
        i
        for i in updates
        if wanted and header[i].strip()[len(_UPDATE_PREFIX) :].strip().casefold() == wanted.casefold()
    ]
    if len(matching) == 1:
        return matching[0]
    names = ", ".join(_shown(header[i].strip(), 40) for i in updates[:_SHOWN_COLUMNS])
    if len(updates) > _SHOWN_COLUMNS:
        names += f", … ({len(updates) - _SHOWN_COLUMNS} more)"
    if not wanted:
        # The qualification's name could not be looked up, so no column can be matched to it.
        problem = (
            f"the file has UPDATE- {_plural(len(updates), 'column')} ({names}), but this qualification's name "
            "is not known, so no UPDATE- column can be used"
        )
    elif not matching:
        columns = f"{_plural(len(updates), 'column')} ({names}) {'is' if len(updates) == 1 else 'are'}"
        expected = _shown(f"{_UPDATE_PREFIX.upper()}{wanted}", 70)
        problem = (
            f"the file's UPDATE- {columns} not for “{_clip(wanted, 60)}”; "
            f"the scores for it go in a column named {expected}"
        )
    else:
        problem = (
            f"the file has {len(updates)} UPDATE- columns ({names}) and {len(matching)} are for "
            f"“{_clip(wanted, 60)}”; keep only the one for this qualification"
        )
    raise WorkerFileError([problem])


class _Problems:
    """The problems found so far, in file order: all counted, the first _MAX_LISTED_ERRORS spelled out."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.unlisted = 0

    def __bool__(self) -> bool:
        return bool(self.listed)

    @property
    def full(self) -> bool:
        """Whether a further problem would only be counted (so its message need not be built)."""
        return len(self.listed) >= _MAX_LISTED_ERRORS

    def append(self, message: str) -> None:
        if self.full:
            self.unlisted += 1
        else:
            self.listed.append(message)

    def error(self, first: str | None = None) -> WorkerFileError:
        return WorkerFileError(([first] if first else []) + self.listed, unlisted=self.unlisted)


class _Collector:
    """Workers and problems as rows are read: reading goes on after a problem, so the user fixes all in one go."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self.errors = _Problems()
        # The result itself, built as the file is read, and beside it the line each worker was first seen on, in
        # an array: a (score, line) tuple per worker, turned into the result at the end, took twice the memory.
        self.workers: dict[str, WorkerTarget] = {}
        self._first_lines = array("q")  # in the order of `workers`
        self._places: dict[str, int] | None = None  # worker ID → index in `workers`, made at the first contradiction

    def add(self, worker_id: str, value: int | Operation | None, line: int) -> None:
        first = self.workers.get(worker_id)
        if first is None:
            if self._places is not None:
                self._places[worker_id] = len(self.workers)
            self.workers[worker_id] = _target(worker_id, value)
            self._first_lines.append(line)
        elif _value(first) != value:
            # A batch results CSV lists a worker once per assignment: the same score again is no news, but a
            # different one means the file contradicts itself, and guessing which is meant would grant wrongly.
            if self.errors.full:
                self.errors.unlisted += 1
                return
            self.errors.append(
                f"line {line}: {worker_id} appears again with value {_value_text(value)} "
                f"(line {self._first_line(worker_id)} gave {_value_text(_value(first))})"
            )

    def _first_line(self, worker_id: str) -> int:
        if self._places is None:  # only a file that contradicts itself needs this, and it will be refused
            self._places = {seen: index for index, seen in enumerate(self.workers)}
        return self._first_lines[self._places[worker_id]]

    def check_worker_id(self, raw: str, line: int) -> str | None:
        if WORKER_ID_PATTERN.fullmatch(raw):
            return raw
        if self.errors.full:
            self.errors.unlisted += 1
        elif _WORKER_ID_ANY_CASE.fullmatch(raw):
            # Upper-casing would usually be right, but a mangled ID could then grant a different worker.
            self.errors.append(
                f"line {line}: {_shown(raw)} is not an MTurk worker ID (they are upper-case, starting with A)"
            )
        else:
            self.errors.append(f"line {line}: {_shown(raw)} is not an MTurk worker ID")
        return None

    def result(self, *, per_worker_values: bool, skipped_rows: int, source: str, empty: str) -> WorkerFile:
        count = len(self.workers)
        if count > self.max_workers:
            raise self.errors.error(
                f"{count:,} workers is more than the {self.max_workers:,} one request may hold; split the file"
            )
        if self.errors:
            raise self.errors.error()
        if not count:
            raise WorkerFileError([empty])
        description = f"{source}, {count:,} {_plural(count, 'worker')}"
        if skipped_rows:
            description += f" ({skipped_rows:,} {_plural(skipped_rows, 'row')} with a blank score skipped)"
        return WorkerFile(tuple(self.workers.values()), per_worker_values, skipped_rows, description)


def _target(worker_id: str, value: int | Operation | None) -> WorkerTarget:
    if value is Operation.REVOKE:
        return WorkerTarget(worker_id, None, Operation.REVOKE)
    return WorkerTarget(worker_id, value if isinstance(value, int) else None)


def _value(target: WorkerTarget) -> int | Operation | None:
    """What the file said for this worker: the score, or Operation.REVOKE (the inverse of _target)."""
    return Operation.REVOKE if target.operation is Operation.REVOKE else target.integer_value


def _parse_csv(
    lines: LineReader,
    delimiter: str,
    *,
    default_value: int | None,
    qualification_name: str | None,
    max_workers: int,
) -> WorkerFile:
    collector = _Collector(max_workers)
    header_number = lines.number
    records = _records(lines, delimiter, collector.errors)
    header_line, header = next(records, (header_number, []))
    worker_column = _worker_column(header)
    if worker_column is None:  # only when the strict reading disagrees with the lenient sniff of the header
        raise collector.errors.error(None if collector.errors else f"line {header_line}: no WorkerId column")
    worker_name = header[worker_column].strip()
    update_column = _update_column(header, qualification_name)
    update_name = header[update_column].strip() if update_column is not None else ""
    current_column = _current_column(header, qualification_name)
    current: dict[str, int] = {}
    skipped = 0
    for line, row in records:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue  # blank lines, and Excel's trailing ",,,," rows
        value: int | Operation | None = default_value
        if update_column is not None:
            score = cells[update_column] if update_column < len(cells) else ""
            if not score:
                # The requester site leaves UPDATE- blank for "no change": nothing to grant for this row.
                skipped += 1
                continue
            value = _parse_score(score, update_name, line, collector.errors)
        raw = cells[worker_column] if worker_column < len(cells) else ""
        if not raw:
            collector.errors.append(f"line {line}: no worker ID in the {_clip(worker_name, 40)} column")
            continue
        worker_id = collector.check_worker_id(raw, line)
        if worker_id is not None and (update_column is None or value is not None):
            collector.add(worker_id, value, line)
            held = cells[current_column] if current_column is not None and current_column < len(cells) else ""
            if re.fullmatch(r"[+-]?\d{1,10}", held) and INT32_MIN <= int(held) <= INT32_MAX:
                current.setdefault(worker_id, int(held))
    if update_column is not None:
        source = f"{_clip(update_name, 60)} column"
        empty = (
            f"no row has a score in the {_clip(update_name, 60)} column ({skipped:,} left blank); nothing to grant"
            if skipped
            else "the file has a header but no workers"
        )
    else:
        source, empty = f"{_clip(worker_name, 40)} column", "the file has a header but no workers"
    parsed = collector.result(
        per_worker_values=update_column is not None, skipped_rows=skipped, source=source, empty=empty
    )
    return replace(parsed, current_values=tuple(current.items()))


def _current_column(header: list[str], qualification_name: str | None) -> int | None:
    """The CURRENT-<qualification> column (informational: a blank or odd cell is no error), or None."""
    wanted = (qualification_name or "").strip().casefold()
    for index, name in enumerate(header):
        cleaned = name.strip()
        prefixed = cleaned.lower().startswith(_CURRENT_PREFIX)
        if wanted and prefixed and cleaned[len(_CURRENT_PREFIX) :].strip().casefold() == wanted:
            return index
    return None


def _records(lines: LineReader, delimiter: str, errors: _Problems) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the physical line each starts on (1-based), from the line stood on (the header) on.

    Strict quoting: a quote left open would otherwise swallow every later row into one field, silently
    dropping those workers. After a quoting error nothing further can be trusted, so reading stops there.
    """
    start = lines.number - 1  # lines before the header
    reader = csv.reader(lines.rest(), delimiter=delimiter, skipinitialspace=True, strict=True)
    while True:
        first_line = start + reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                errors.append(f"line {first_line}: a quote opened in this row is never closed")
            elif "field larger than field limit" in str(error):
                errors.append(f"line {first_line}: a cell is too long to be part of a worker list")
            else:
                errors.append(
                    f"line {start + reader.line_num}: the CSV's quoting is broken here ({error}); "
                    "the rest of the file was not read"
                )
            return
        yield first_line, row


def _parse_score(raw: str, column: str, line: int, errors: _Problems) -> int | Operation | None:
    """A score, or Operation.REVOKE for the requester site's `Revoke`; None (and an error) for anything else."""
    if raw.casefold() == "revoke":
        return Operation.REVOKE
    if not _INTEGER.fullmatch(raw) or not INT32_MIN <= int(raw) <= INT32_MAX:
        errors.append(
            f"line {line}: {_shown(raw)} in {_clip(column, 60)} is not a whole number "
            f"between {INT32_MIN} and {INT32_MAX}"
        )
        return None
    return int(raw)


def _parse_plain(lines: LineReader, *, default_value: int | None, max_workers: int) -> WorkerFile:
    collector = _Collector(max_workers)
    for number, line in enumerate(lines.rest(), start=lines.number):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        for token in _PLAIN_SEPARATORS.split(text):
            raw = token.strip(_QUOTES)
            if not raw:
                continue
            if (worker_id := collector.check_worker_id(raw, number)) is not None:
                collector.add(worker_id, default_value, number)
    return collector.result(
        per_worker_values=False, skipped_rows=0, source="one ID per line", empty="the file has no worker IDs"
    )


def _value_text(value: int | Operation | None) -> str:
    if value is Operation.REVOKE:
        return "Revoke"
    return "(the default)" if value is None else str(value)


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(raw: str, limit: int = _SHOWN_VALUE_CHARS) -> str:
    """A value from the file, quoted for a message, with no backtick inside to break the quoting."""
    return "`" + _cleaned(raw, limit).replace("`", "'") + "`"


def _cleaned(raw: str, limit: int) -> str:
    """A value from the file made safe to show: on one line, without invisible characters, clipped."""
    raw = _clip(raw, limit)
    if raw.isprintable():  # exactly "no character of categories C or Z but the space": the usual case, fast
        return raw
    return "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in raw)
