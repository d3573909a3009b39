"""Text for the preview: the change line of the approval message, and the requester's progress note. Pure
functions, no network calls; worker IDs come from the store (validated), the file's scores are integers."""

from __future__ import annotations

from bot.config import MTurkEnvironment
from bot.preview import ChangeKind, ReadProgress
from bot.reports import file_differs
from bot.requests import GrantRequest
from bot.slack.blocks import SECTION_TEXT_LIMIT, environment_tag, truncate
from bot.store import PreviewSummary, RecordedChange


def change_text(request: GrantRequest, summary: PreviewSummary) -> str:
    """`*Change*: 120 new · 30 changed (e.g. `A1…` 50 → 80) · 12 unchanged (not called) · …`, then what happens
    to unchanged workers, and the worker file's mismatches."""
    env = MTurkEnvironment(request.mturk_env).label.split()[-1]  # "SANDBOX" / "PRODUCTION"
    counts, examples = summary.counts, summary.examples
    unchanged = "granted again" if request.regrant else "not called"
    parts = [
        (ChangeKind.NEW, "new (no score yet)"),
        (ChangeKind.CHANGED, "changed"),
        (ChangeKind.UNCHANGED, f"unchanged ({unchanged})"),
        (ChangeKind.REVOKED_EARLIER, "revoked earlier"),
        (ChangeKind.UNKNOWN_WORKER, f"unknown in {env}"),
        (ChangeKind.UNREAD, "not read (MTurk did not answer; done as requested)"),
        (ChangeKind.REVOKE, "revoke"),
        (ChangeKind.NOT_HELD, "do not hold it (not called)"),
    ]
    shown = [
        f"{counts[kind]} {label}{_examples(kind, examples.get(kind, []))}" for kind, label in parts if counts[kind]
    ]
    lines = [f"*Change*: {' · '.join(shown)}"]
    if counts[ChangeKind.UNCHANGED]:
        if request.regrant:
            lines.append("Re-grant was asked: workers who already hold the score are granted again.")
        else:
            lines.append(
                f"{counts[ChangeKind.UNCHANGED]} worker(s) already hold the score and will not be called (no call, "
                "no second email); to grant them anyway, request again with `regrant=yes` (or tick Re-grant in "
                "the form)."
            )
    if summary.file_mismatches:
        cases = ", ".join(
            f"`{c.worker_id}` file {c.file_current}, MTurk {c.previous.text() if c.previous else '?'}"
            for c in summary.file_mismatch_examples
            if file_differs(c)
        )
        lines.append(
            f":warning: The worker file's CURRENT- score differs from MTurk for {summary.file_mismatches} worker(s) "
            f"(e.g. {cases}): the file may be stale; the preview shows what MTurk holds."
        )
    lines.append("Each worker's current and new score is in the preview CSV in this thread.")
    return truncate("\n".join(lines), SECTION_TEXT_LIMIT)


def _examples(kind: ChangeKind, changes: list[RecordedChange]) -> str:
    if not changes or kind is ChangeKind.UNREAD:
        return ""
    shown = []
    for change in changes[:2]:
        new = 1 if change.integer_value is None else change.integer_value
        before = change.previous.text() if change.previous else "?"
        if kind is ChangeKind.REVOKE:
            shown.append(f"`{change.worker_id}` revoke (had {change.previous.value if change.previous else '?'})")
        elif kind in (ChangeKind.CHANGED, ChangeKind.REVOKED_EARLIER):
            shown.append(f"`{change.worker_id}` {before} → {new}")
        elif kind is ChangeKind.UNCHANGED:
            shown.append(f"`{change.worker_id}` already holds {new}")
        else:
            shown.append(f"`{change.worker_id}`")
    return f" (e.g. {', '.join(shown)})"


def progress_text(request: GrantRequest, progress: ReadProgress | None) -> str:
    """The requester's note while a long preview reads MTurk, and once it is done (progress None)."""
    tag = environment_tag(request.mturk_env)
    if progress is None:
        return (
            f"{tag} :white_check_mark: Read the current scores of the {request.worker_count} worker(s) of request "
            f"#{request.id}; it is posted for approval."
        )
    read = f" · {progress.workers_read} of {progress.worker_count} workers read" if progress.workers_read else ""
    return (
        f"{tag} :mag: Reading the current scores of the {request.worker_count} worker(s) of request #{request.id} "
        f"before it is posted: {progress.calls} MTurk calls so far{read}…"
    )
