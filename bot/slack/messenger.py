"""Everything the app posts to Slack on its own: the approval message, its updates, thread replies and DMs.

Each request event (submitted, approved, rejected, finished) is told in steps; a step that is done is
recorded, so a delivery retried after a crash or an outage repeats none. Posts carry the event's ID as
message metadata: when Slack's answer to a post was lost, the thread or channel is read back before posting
again, so a result is never posted twice. Message updates render the request's current state, so they can
arrive in any order and as often as needed.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TextIO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import MTurkEnvironment
from bot.outcome_digest_store import OutcomeDigestStore
from bot.reports import workers_csv, write_preview_csv, write_results_csv
from bot.requests import EventKind, GrantRequest, RequestEvent, RequestState, WorkerStatus
from bot.slack import blocks, expiry_blocks, pending_blocks, preview_blocks
from bot.slack.uploads import upload_file, upload_text
from bot.store import GrantStore

log = logging.getLogger(__name__)

METADATA_EVENT_TYPE = "grant_qual_event"
STEPS: dict[EventKind, tuple[str, ...]] = {
    EventKind.SUBMITTED: ("post", "worker_file"),
    EventKind.APPROVAL_ADDED: ("update",),  # who approved so far, on the message; the buttons stay
    EventKind.APPROVED: ("update", "progress"),
    EventKind.RETRY_APPROVED: ("update", "retire_summary", "progress"),
    EventKind.REJECTED: ("update", "thread", "dm"),
    EventKind.FINISHED: ("update", "progress", "thread", "results_file", "dm"),
    EventKind.ENVIRONMENT_MISMATCH: ("thread",),
    EventKind.CANCELLED: ("update", "thread"),
    EventKind.EXPIRED: ("update", "thread", "dm"),
    EventKind.REMINDED: ("thread",),
    EventKind.UNDO_REQUESTED: ("retire_undo", "thread"),
    EventKind.EXPIRY_NOTICE: ("dm",),
    EventKind.EXPIRY_EXTENDED: ("update", "thread"),
    EventKind.EXPIRY_STARTED: ("update", "thread"),
}


class SlackMessenger:
    def __init__(self, client: WebClient, store: GrantStore, approval_channel: str) -> None:
        self.client = client
        self.store = store
        # What the messages say of a request's outcomes, read as a digest: never every worker's outcome.
        self.digests = OutcomeDigestStore(store.engine)
        self.approval_channel = approval_channel

    def tell(self, event: RequestEvent) -> None:
        """Carry out the event's remaining steps; raises SlackApiError (or a connection error) to retry later."""
        for step in STEPS[event.kind]:
            if step in event.steps_done:
                continue
            request = self.store.get(event.request_id)
            assert request is not None
            getattr(self, f"_step_{step}")(request, event)
            self.store.event_step_done(event.id, step)

    def permalink(self, request: GrantRequest) -> str | None:
        if not request.channel_id or not request.message_ts:
            return None
        try:
            response = self.client.chat_getPermalink(channel=request.channel_id, message_ts=request.message_ts)
            return str(response["permalink"])
        except SlackApiError as error:
            log.warning("could not get a permalink: %s", error.response.get("error"))
            return None

    def update_request_message(self, request: GrantRequest, progress: str = "") -> None:
        """Render the request message from the request's current state."""
        if request.expiry_of is not None:  # an expiry request has no message: it shows on its original's
            original = self.store.get(request.expiry_of)
            if original is not None:
                self.update_request_message(original)
            return
        if not request.channel_id or not request.message_ts:
            return
        approvers = self.store.approvers(request.id) if request.approvals_required > 1 else ()
        text, message_blocks = blocks.request_message(
            request,
            self.digests.digest(request.id),
            self._status(request, progress, approvers),
            self._change(request),
            approvers=approvers,
            undo_link=self._undo_link(request),
        )
        finished = request.state in (RequestState.DONE, RequestState.FAILED)
        message_blocks = expiry_blocks.with_expiry(request, message_blocks, finished=finished)
        self.client.chat_update(channel=request.channel_id, ts=request.message_ts, text=text, blocks=message_blocks)

    def _undo_link(self, request: GrantRequest) -> str:
        """For an undo request: " (<link|see it>)" to the request it undoes, when Slack gives its link."""
        original = self.store.get(request.undo_of) if request.undo_of is not None else None
        link = self.permalink(original) if original else None
        return f" (<{link}|see it>)" if link else ""

    def _change(self, request: GrantRequest) -> str | None:
        """The preview's change line, for a request that has a preview."""
        summary = self.store.preview_summary(request.id)
        return preview_blocks.change_text(request, summary) if summary else None

    def _status(self, request: GrantRequest, progress: str, approvers: tuple[str, ...] = ()) -> str | None:
        if request.state is RequestState.PENDING:
            return None
        if request.state is RequestState.REJECTED:
            return blocks.decided_status(request)
        if request.state is RequestState.CANCELLED:
            return pending_blocks.cancelled_status(request)
        if request.state is RequestState.EXPIRED:
            return pending_blocks.expired_status(request)
        if request.state in (RequestState.APPROVED, RequestState.GRANTING):
            granting = progress or f" — granting to {request.worker_count} worker(s)…"
            return blocks.decided_status(request, granting, approvers)
        counts = self.store.status_counts(request.id)
        line = blocks.outcome_line(counts[WorkerStatus.GRANTED], request)
        return blocks.decided_status(request, f" — {line}", approvers)

    def _step_post(self, request: GrantRequest, event: RequestEvent) -> None:
        if request.message_ts:
            return
        found = self._find_posted(event, self.approval_channel, None) if event.attempts > 1 else None
        if found is None:
            text, message_blocks = blocks.request_message(
                request,
                self.digests.digest(request.id),
                change=self._change(request),
                undo_link=self._undo_link(request),
            )
            message_blocks = expiry_blocks.with_expiry(request, message_blocks, finished=False)
            response = self.client.chat_postMessage(
                channel=self.approval_channel, text=text, blocks=message_blocks, metadata=_metadata(event)
            )
            found = str(response["ts"])
        self.store.attach_message(request.id, self.approval_channel, found)

    def _step_update(self, request: GrantRequest, event: RequestEvent) -> None:
        self.update_request_message(request)

    def _step_thread(self, request: GrantRequest, event: RequestEvent) -> None:
        if not request.channel_id or not request.message_ts:
            return
        if event.kind is EventKind.REMINDED and request.state is not RequestState.PENDING:
            return  # decided, cancelled or expired before the reminder went out: nobody needs reminding
        if event.attempts > 1 and (found := self._find_posted(event, request.channel_id, request.message_ts)):
            if event.kind is EventKind.FINISHED:
                self.store.set_message_ts(request.id, summary_ts=found)
            return
        if event.kind is EventKind.REJECTED:
            headline = blocks.rejection_reply(request, with_reason=False)
            text, message_blocks = blocks.rejection_reply(request), blocks.rejection_blocks(headline, request)
        elif event.kind is EventKind.ENVIRONMENT_MISMATCH:
            text, message_blocks = blocks.environment_mismatch_note(request), None
        elif event.kind is EventKind.CANCELLED:
            text, message_blocks = pending_blocks.cancellation_reply(request), None
        elif event.kind is EventKind.EXPIRED:
            text, message_blocks = pending_blocks.expiry_reply(request), None
        elif event.kind is EventKind.REMINDED:
            text, message_blocks = pending_blocks.reminder_reply(request), None
        elif event.kind is EventKind.UNDO_REQUESTED:
            text, message_blocks = blocks.undo_requested_reply(request, event.actor_id or ""), None
        elif event.kind is EventKind.EXPIRY_EXTENDED:
            text, message_blocks = expiry_blocks.extended_reply(request, event.actor_id or ""), None
        elif event.kind is EventKind.EXPIRY_STARTED:
            original = self.store.get(request.expiry_of) if request.expiry_of is not None else None
            text, message_blocks = expiry_blocks.started_reply(request, original or request), None
        else:
            text, message_blocks = self._result_message(request, event)
        response = self.client.chat_postMessage(
            channel=request.channel_id,
            thread_ts=request.message_ts,
            text=text,
            blocks=message_blocks,
            metadata=_metadata(event),
            # The reminder shows in the channel too, so approvers who do not follow the thread see it.
            **({"reply_broadcast": True} if event.kind is EventKind.REMINDED else {}),
        )
        if event.kind is EventKind.FINISHED:
            self.store.set_message_ts(request.id, summary_ts=str(response["ts"]))

    def _result_message(self, request: GrantRequest, event: RequestEvent) -> tuple[str, list[dict[str, Any]]]:
        """A round's summary; an expiry request's says it is one, a grant that expires says when."""
        outcomes = self.digests.digest(request.id)
        undo = request.undone_by is None and self.store.changed_anyone(request.id)
        elapsed = self._round_seconds(event)
        text, message_blocks = blocks.result_message(request, outcomes, elapsed, undo=undo)
        if request.expiry_of is not None:
            return expiry_blocks.result_message(request, outcomes, message_blocks, elapsed)
        if note := expiry_blocks.summary_note(request):
            message_blocks.insert(1, note)
        return text, message_blocks

    def _step_dm(self, request: GrantRequest, event: RequestEvent) -> None:
        link = self.permalink(request)
        message_blocks = None
        if event.kind is EventKind.REJECTED:
            text = blocks.rejection_dm(request, link)
            message_blocks = blocks.rejection_blocks(blocks.rejection_dm(request, link, with_reason=False), request)
        elif event.kind is EventKind.EXPIRED:
            text = pending_blocks.expiry_dm(request, link)
        elif event.kind is EventKind.EXPIRY_NOTICE:
            text = expiry_blocks.notice_dm(request, link)
        elif request.expiry_of is not None:
            text = expiry_blocks.result_dm(request, self.digests.digest(request.id), link)
        else:
            counts = self.store.status_counts(request.id)
            granted, failed = counts[WorkerStatus.GRANTED], counts[WorkerStatus.FAILED]
            text = blocks.result_dm(request, granted, failed, self._round_seconds(event), link)
        if event.attempts > 1:
            # A DM whose answer was lost may have landed: read the app's DM with the requester back first.
            dm_channel = str(self.client.conversations_open(users=request.requester_id)["channel"]["id"])
            if self._find_posted(event, dm_channel, None):
                return
        self.client.chat_postMessage(
            channel=request.requester_id, text=text, blocks=message_blocks, metadata=_metadata(event)
        )

    def _step_progress(self, request: GrantRequest, event: RequestEvent) -> None:
        """Open the round's progress message in the thread, or (when the round ends) give it its last words."""
        if not request.channel_id or not request.message_ts:
            return
        if request.progress_ts:
            self.show_recorded_progress(request)
            return
        if event.kind is EventKind.FINISHED:
            return  # the round ended before its progress message was posted; the summary says it all
        found = self._find_posted(event, request.channel_id, request.message_ts) if event.attempts > 1 else None
        if found is None:
            text = self._recorded_progress_text(request)
            response = self.client.chat_postMessage(
                channel=request.channel_id, thread_ts=request.message_ts, text=text, metadata=_metadata(event)
            )
            found = str(response["ts"])
        self.store.set_message_ts(request.id, progress_ts=found)

    def show_recorded_progress(self, request: GrantRequest) -> None:
        """Set the progress message to the counts in the database (a round's last words, when it has ended)."""
        if request.channel_id and request.progress_ts:
            text = self._recorded_progress_text(request)
            self.client.chat_update(channel=request.channel_id, ts=request.progress_ts, text=text)

    def _recorded_progress_text(self, request: GrantRequest) -> str:
        counts = self.store.status_counts(request.id)
        granted, failed, pending = (
            counts[s] for s in (WorkerStatus.GRANTED, WorkerStatus.FAILED, WorkerStatus.PENDING)
        )
        return blocks.progress_text(request, granted, failed, pending, None)

    def show_progress(self, request: GrantRequest, granted: int, failed: int, remaining: int, rate: float) -> None:
        """Update the progress message in place (the executor calls this about once a second)."""
        if request.channel_id and request.progress_ts:
            text = blocks.progress_text(request, granted, failed, remaining, rate)
            self.client.chat_update(channel=request.channel_id, ts=request.progress_ts, text=text)

    def _step_retire_summary(self, request: GrantRequest, event: RequestEvent) -> None:
        """The previous round's Retry button gives way to who retried."""
        self._rewrite_summary(request, lambda shown: blocks.retired_summary(shown, event.actor_id or "", event.round))

    def _step_retire_undo(self, request: GrantRequest, event: RequestEvent) -> None:
        """The summary's Undo button gives way to the undo request's number, so nobody clicks it again."""
        self._rewrite_summary(
            request, lambda shown: blocks.undone_summary(shown, event.actor_id or "", request.undone_by)
        )

    def _rewrite_summary(self, request: GrantRequest, rewrite: Callable[[list[Any]], list[Any]]) -> None:
        """Read the latest summary back from the thread and replace its blocks with `rewrite(blocks)`."""
        if not request.channel_id or not request.message_ts or not request.summary_ts:
            return
        replies = self.client.conversations_replies(channel=request.channel_id, ts=request.message_ts, limit=1000)
        summary = next((m for m in replies.get("messages", []) if m.get("ts") == request.summary_ts), None)
        if summary is None:
            return
        self.client.chat_update(
            channel=request.channel_id,
            ts=request.summary_ts,
            text=summary.get("text") or "",
            blocks=rewrite(summary.get("blocks") or []),
        )

    def _step_worker_file(self, request: GrantRequest, event: RequestEvent) -> None:
        """The preview as a file in the thread (each worker's current and new score), for every request with one;
        for a request stored without a preview, the full list of workers and scores when the approval message
        leaves some out, so the approver sees everyone."""
        if self.store.preview_summary(request.id, examples=0) is not None:
            env = MTurkEnvironment(request.mturk_env).label
            comment = f"The change for each of the {request.worker_count} workers: current score, new score, change."
            filename = f"grant-qual-request-{request.id}-preview.csv"
            with_file = self.store.has_file_current(request.id)
            changes = self.store.iter_changes(request.id)
            self._upload_streamed(
                request, event, filename, comment, lambda out: write_preview_csv(changes, env, out, with_file=with_file)
            )
            return
        if not blocks.needs_worker_file(request, self.digests.digest(request.id)):
            return
        filename = f"grant-qual-request-{request.id}-workers.csv"
        content = workers_csv(self.store.iter_outcomes(request.id))
        comment = f"All {request.worker_count} workers this request would grant, with their scores."
        self._upload_once(request, event, filename, content, comment)

    def _step_results_file(self, request: GrantRequest, event: RequestEvent) -> None:
        filename = f"grant-qual-request-{request.id}-round-{event.round}-results.csv"
        outcomes = self.store.iter_outcomes(request.id)
        comment = "Every worker's result, in MTurk's words."
        self._upload_streamed(request, event, filename, comment, lambda out: write_results_csv(outcomes, out))

    def _upload_streamed(
        self, request: GrantRequest, event: RequestEvent, filename: str, comment: str, write: Callable[[TextIO], None]
    ) -> None:
        """Upload what `write` writes, once: written from the store a page at a time into a file on disk and
        streamed from there to Slack, so a 100,000-worker request's file never sits whole in memory."""
        if not request.channel_id or not request.message_ts:
            return
        if event.attempts > 1 and self._file_in_thread(request, filename):
            return
        with tempfile.TemporaryFile() as file:
            text = io.TextIOWrapper(file, encoding="utf-8", newline="")
            write(text)
            text.flush()
            text.detach()
            upload_file(
                self.client,
                channel=request.channel_id,
                thread_ts=request.message_ts,
                filename=filename,
                file=file,
                initial_comment=comment,
            )

    def _upload_once(
        self, request: GrantRequest, event: RequestEvent, filename: str, content: str, comment: str
    ) -> None:
        if not request.channel_id or not request.message_ts:
            return
        if event.attempts > 1 and self._file_in_thread(request, filename):
            return
        upload_text(
            self.client,
            channel=request.channel_id,
            thread_ts=request.message_ts,
            filename=filename,
            content=content,
            initial_comment=comment,
        )

    def _file_in_thread(self, request: GrantRequest, filename: str) -> bool:
        response = self.client.conversations_replies(channel=request.channel_id, ts=request.message_ts, limit=1000)
        return any(
            f.get("name") == filename or f.get("title") == filename
            for m in response.get("messages", [])
            for f in m.get("files") or []
        )

    def _round_seconds(self, event: RequestEvent) -> float | None:
        """How long the round took: from its approval to its end."""
        started = [
            e.created_at
            for e in self.store.events(event.request_id)
            if e.round == event.round
            and e.kind in (EventKind.APPROVED, EventKind.RETRY_APPROVED, EventKind.EXPIRY_STARTED)
        ]
        return (event.created_at - started[0]).total_seconds() if started else None

    def _find_posted(self, event: RequestEvent, channel: str, thread_ts: str | None) -> str | None:
        """The ts of a message this event already posted (its answer was lost), or None."""
        oldest = f"{(event.created_at - timedelta(minutes=1)).timestamp():.6f}"
        if thread_ts:
            response = self.client.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
            )
        else:
            response = self.client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True, limit=200
            )
        for message in response.get("messages", []):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("event_id") == event.id:
                return str(message["ts"])
        return None


def _metadata(event: RequestEvent) -> dict[str, Any]:
    return {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {"event_id": event.id, "request_id": event.request_id, "kind": event.kind.value},
    }
