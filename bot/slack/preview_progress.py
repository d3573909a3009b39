"""The requester's view of a long preview: a DM, posted once the preview has taken a few seconds and updated
in place as MTurk answers, then told the request is posted.

A DM rather than the command's response_url: Slack lets a response_url be used five times in 30 minutes, and
the requester's answer ("waiting for approval") needs one of them; a DM can be updated as often as needed,
and the modal has no response_url of its own at all.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.preview import ReadProgress
from bot.requests import GrantRequest
from bot.slack import preview_blocks

if TYPE_CHECKING:
    from bot.slack import SlackContext

log = logging.getLogger(__name__)


class _ProgressDm:
    def __init__(self, context: SlackContext) -> None:
        self._client = context.messenger.client
        self._where: tuple[str, str] | None = None  # the DM's channel and ts, once posted

    def show(self, request: GrantRequest, progress: ReadProgress | None) -> None:
        text = preview_blocks.progress_text(request, progress)
        if self._where is None:
            if progress is None:
                return  # quick enough: nothing was shown, nothing to close
            response = self._client.chat_postMessage(channel=request.requester_id, text=text)
            self._where = (str(response["channel"]), str(response["ts"]))
        else:
            self._client.chat_update(channel=self._where[0], ts=self._where[1], text=text)


def preview_request(context: SlackContext, request: GrantRequest) -> GrantRequest:
    """Read and record a stored request's change (bot/service.py preview), showing progress when it is long."""
    dm = _ProgressDm(context)
    previewed = context.service.preview(request, dm.show)
    try:
        dm.show(previewed, None)
    except Exception:
        log.warning("could not close the preview progress of request #%s", request.id, exc_info=True)
    return previewed
