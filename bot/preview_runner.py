"""Runs the preview of stored requests: read each worker's state from MTurk, record the change set, then make
the request pending (its SUBMITTED event posts it for approval), exactly once.

A request is stored first, in state PREVIEWING under this process's lease, so a crash during a long preview
loses nothing: the lease lapses and the recovery loop (any replica) reads it again from the start. The
swap PREVIEWING → PENDING is a compare-and-swap on the lease owner, with the SUBMITTED event in the same
transaction, so a request is posted once however many processes preview it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from bot.mturk import MTurkAccessError, MTurkGateway
from bot.preview import Held, HeldStatus, Preview, ReadProgress, changes, read_current
from bot.requests import GrantRequest, RequestState
from bot.store import GrantStore

log = logging.getLogger(__name__)

RECORD_BATCH = 500
# Progress is shown to the requester once a preview has taken this long, then about every PROGRESS_EVERY.
PROGRESS_AFTER = 3.0
PROGRESS_EVERY = 2.0

ProgressReport = Callable[[GrantRequest, ReadProgress], None]


class PreviewRunner:
    def __init__(
        self,
        store: GrantStore,
        gateway: MTurkGateway,
        *,
        concurrency: int = 8,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.owner = f"preview-{uuid.uuid4().hex[:12]}"
        self.lease = lease
        self._concurrency = concurrency
        self._stopping = threading.Event()
        self._recovery: threading.Thread | None = None

    def run(self, request_id: int, on_progress: ProgressReport | None = None) -> Preview | None:
        """Read and record the change set of a request this process holds, then make it pending; the preview,
        or None if another process holds it (or it is no longer previewing)."""
        request = self.store.get(request_id)
        if request is None or request.state is not RequestState.PREVIEWING:
            return None
        if request.mturk_env != self.gateway.environment.value:
            return None  # read only in the request's own environment (the claim checks it too)
        if not self.store.renew_preview_lease(request_id, owner=self.owner, lease=self.lease):
            return None
        targets = self.store.preview_targets(request_id)
        started = time.monotonic()
        last_renewed = last_shown = started

        def progressed(progress: ReadProgress) -> None:
            nonlocal last_renewed, last_shown
            moment = time.monotonic()
            if moment - last_renewed >= self.lease.total_seconds() / 3:
                last_renewed = moment
                self.store.renew_preview_lease(request_id, owner=self.owner, lease=self.lease)
            if on_progress and moment - started >= PROGRESS_AFTER and moment - last_shown >= PROGRESS_EVERY:
                last_shown = moment
                try:
                    on_progress(request, progress)
                except Exception:
                    log.warning("could not show the preview's progress of request #%s", request_id, exc_info=True)

        try:
            found = read_current(
                self.gateway,
                request.qualification_type_id,
                [t.worker_id for t in targets],
                concurrency=self._concurrency,
                on_progress=progressed,
            )
            held = found.held
            log.info(
                "request #%s previewed: %s calls (%s) for %s workers",
                request_id,
                found.calls,
                found.strategy,
                len(targets),
            )
        except MTurkAccessError as error:
            # Nothing can be read; the grant will say the same. The request goes ahead without a preview.
            log.warning("request #%s: no preview, MTurk refused the reads: %s", request_id, error)
            held = {t.worker_id: Held(HeldStatus.UNREAD) for t in targets}
        change_set = changes(targets, held)
        for start in range(0, len(change_set), RECORD_BATCH):
            batch = change_set[start : start + RECORD_BATCH]
            self.store.record_changes(request_id, batch, regrant=request.regrant, owner=self.owner)
        if not self.store.finish_preview(request_id, owner=self.owner):
            return None
        return Preview.of(change_set)

    def resume_abandoned(self) -> list[int]:
        """Preview again the requests whose previewer died; the ones this process finished."""
        finished = []
        env = self.gateway.environment.value
        for request_id in self.store.abandoned_preview_ids(env):
            if self._stopping.is_set():
                break
            if self.store.claim_preview(request_id, owner=self.owner, lease=self.lease, mturk_env=env):
                log.info("request #%s: its preview was left unfinished; reading it again", request_id)
                if self.run(request_id) is not None:
                    finished.append(request_id)
        return finished

    def start_recovery_loop(self, on_finished: Callable[[], None], interval: float | None = None) -> None:
        """Every `interval` seconds, finish the previews of processes that died; `on_finished` when any is."""
        period = interval if interval is not None else self.lease.total_seconds() / 2

        def loop() -> None:
            while True:  # at once, for what a process that died before this one left, then every `period`
                try:
                    if self.resume_abandoned():
                        on_finished()
                except Exception:
                    log.exception("resuming previews failed; will try again")
                if self._stopping.wait(period):
                    return

        self._recovery = threading.Thread(target=loop, name="preview-recovery", daemon=True)
        self._recovery.start()

    def stop(self) -> None:
        self._stopping.set()
