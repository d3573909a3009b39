"""Everything the app posts to Slack on its own: the approval message, its updates, thread replies and DMs.

Each request event (submitted, approved, rejected, finished) is told in steps; a step that is done is
recorded, so a delivery retried after a crash or an outage repeats none. Posts carry the event's ID as
message metadata: when Slack's answer to a post was lost, the thread or channel is read back before posting
again, so a result is never posted twice. Message updates render the request's current state, so they can
arrive in any order and as often as needed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.requests import EventKind, GrantRequest, RequestEvent, RequestState, WorkerStatus
from bot.slack import blocks
from bot.store import GrantStore

log = logging.getLogger(__name__)

METADATA_EVENT_TYPE = "grant_qual_event"
STEPS: dict[EventKind, tuple[str, ...]] = {
    EventKind.SUBMITTED: ("post",),
    EventKind.APPROVED: ("update",),
    EventKind.REJECTED: ("update", "thread", "dm"),
    EventKind.FINISHED: ("update", "thread", "dm"),
}


class SlackMessenger:
    def __init__(self, client: WebClient, store: GrantStore, approval_channel: str) -> None:
        self.client = client
        self.store = store
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
        if not request.channel_id or not request.message_ts:
            return
        text, message_blocks = blocks.request_message(
            request, self.store.outcomes(request.id), self._status(request, progress)
        )
        self.client.chat_update(channel=request.channel_id, ts=request.message_ts, text=text, blocks=message_blocks)

    def _status(self, request: GrantRequest, progress: str) -> str | None:
        if request.state is RequestState.PENDING:
            return None
        if request.state is RequestState.REJECTED:
            return blocks.decided_status(request)
        if request.state in (RequestState.APPROVED, RequestState.GRANTING):
            return blocks.decided_status(request, progress or f" — granting to {request.worker_count} worker(s)…")
        counts = self.store.status_counts(request.id)
        return blocks.decided_status(request, f" — {blocks.outcome_line(counts[WorkerStatus.GRANTED], request)}")

    def _step_post(self, request: GrantRequest, event: RequestEvent) -> None:
        if request.message_ts:
            return
        found = self._find_posted(event, self.approval_channel, None) if event.attempts > 1 else None
        if found is None:
            text, message_blocks = blocks.request_message(request, self.store.outcomes(request.id))
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
        if event.attempts > 1 and self._find_posted(event, request.channel_id, request.message_ts):
            return
        if event.kind is EventKind.REJECTED:
            text, message_blocks = blocks.rejection_reply(request), None
        else:
            text, message_blocks = blocks.result_message(request, self.store.outcomes(request.id))
        self.client.chat_postMessage(
            channel=request.channel_id,
            thread_ts=request.message_ts,
            text=text,
            blocks=message_blocks,
            metadata=_metadata(event),
        )

    def _step_dm(self, request: GrantRequest, event: RequestEvent) -> None:
        link = self.permalink(request)
        if event.kind is EventKind.REJECTED:
            text = blocks.rejection_dm(request, link)
        else:
            text = blocks.result_dm(request, self.store.status_counts(request.id)[WorkerStatus.GRANTED], link)
        self.client.chat_postMessage(channel=request.requester_id, text=text)

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
