"""Everything the app posts to Slack on its own: the approval message, its updates, thread replies and DMs.

It is also the executor's GrantObserver, so the outcome of a grant reaches the request's thread once: only
the executor that made the final state transition calls `grant_finished`.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.executor import GrantProgress
from bot.requests import GrantRequest, WorkerOutcome
from bot.slack import blocks
from bot.store import GrantStore

log = logging.getLogger(__name__)


class SlackMessenger:
    def __init__(self, client: WebClient, store: GrantStore, approval_channel: str) -> None:
        self.client = client
        self.store = store
        self.approval_channel = approval_channel

    def post_request(self, request: GrantRequest) -> str | None:
        """Post a new request for approval; returns a permalink to it (None if it could not be linked)."""
        text, message_blocks = blocks.request_message(request, self.store.outcomes(request.id))
        response = self.client.chat_postMessage(channel=self.approval_channel, text=text, blocks=message_blocks)
        channel, ts = response["channel"], response["ts"]
        self.store.attach_message(request.id, channel, ts)
        return self.permalink(channel, ts)

    def show_decision(self, request: GrantRequest, detail: str = "") -> None:
        """Replace the buttons with who decided and when."""
        self.update_request_message(request, blocks.decided_status(request, detail))

    def update_request_message(self, request: GrantRequest, status: str) -> None:
        if not request.channel_id or not request.message_ts:
            return
        text, message_blocks = blocks.request_message(request, self.store.outcomes(request.id), status)
        self._quietly(
            "update request message",
            lambda: self.client.chat_update(
                channel=request.channel_id, ts=request.message_ts, text=text, blocks=message_blocks
            ),
        )

    def post_in_thread(
        self, request: GrantRequest, text: str, message_blocks: list[blocks.Block] | None = None
    ) -> None:
        """The one place that replies in a request's thread."""
        if not request.channel_id or not request.message_ts:
            return
        self._quietly(
            "post in thread",
            lambda: self.client.chat_postMessage(
                channel=request.channel_id, thread_ts=request.message_ts, text=text, blocks=message_blocks
            ),
        )

    def direct_message(self, user_id: str, text: str) -> None:
        self._quietly("send DM", lambda: self.client.chat_postMessage(channel=user_id, text=text))

    def permalink(self, channel: str | None, ts: str | None) -> str | None:
        if not channel or not ts:
            return None
        try:
            return str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except SlackApiError as error:
            log.warning("could not get a permalink: %s", error.response.get("error"))
            return None

    def request_rejected(self, request: GrantRequest) -> None:
        self.show_decision(request)
        tag = blocks.environment_tag(request.mturk_env)
        self.post_in_thread(request, f"{tag} :no_entry: Rejected by <@{request.decided_by}>. Nothing was granted.")
        link = self._link(request)
        self.direct_message(
            request.requester_id,
            f"{tag} Your request #{request.id} to grant {blocks.qualification_text(request)} to "
            f"{request.worker_count} worker(s) was rejected by <@{request.decided_by}>. Nothing was granted.{link}",
        )

    def request_approved(self, request: GrantRequest) -> None:
        self.show_decision(request, f" — granting to {request.worker_count} worker(s)…")

    def grant_progressed(self, request: GrantRequest, progress: GrantProgress) -> None:
        """Progress shows on the request message itself, at most as often as the executor flushes."""
        self.show_decision(
            self.store.get(request.id) or request,
            f" — granting: {progress.granted} granted, {progress.failed} failed, {progress.remaining} remaining "
            f"({progress.calls_per_second:.0f}/s)",
        )

    def grant_finished(self, request: GrantRequest, outcomes: list[WorkerOutcome], elapsed_seconds: float) -> None:
        line = blocks.outcome_line(request, outcomes)
        self.show_decision(request, f" — {line}")
        text, result_blocks = blocks.result_message(request, outcomes, elapsed_seconds)
        self.post_in_thread(request, text, result_blocks)
        tag = blocks.environment_tag(request.mturk_env)
        self.direct_message(
            request.requester_id,
            f"{tag} Your request #{request.id} ({blocks.qualification_text(request)}) was approved by "
            f"<@{request.decided_by}>: {line}.{self._link(request)}",
        )

    def _link(self, request: GrantRequest) -> str:
        link = self.permalink(request.channel_id, request.message_ts)
        return f" <{link}|See the request>" if link else ""

    def _quietly(self, what: str, call: object) -> None:
        """Slack being unavailable must not lose the grant's record; the failure is logged with context."""
        try:
            call()  # type: ignore[operator]
        except SlackApiError as error:
            log.error("could not %s: %s", what, error.response.get("error"))
        except Exception:
            log.exception("could not %s", what)
