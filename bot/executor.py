"""Carries out approved requests: claims one, grants its pending workers concurrently, records outcomes.

One executor per process. The claim is a lease in the database, renewed by a heartbeat thread while the
grant runs, so a second replica never works on the same request and a process that dies leaves its
unfinished workers to whoever claims the request after the lease expires. The heartbeat, not the
coordinating thread, keeps the lease: a coordinator held up (by the database, or by anything else) must not
let the lease lapse while its calls are in flight, or the next owner could call MTurk for the same workers.
Outcomes are written in batches from the coordinating thread, so the hot path makes no database round-trip
per call.

A request runs only in the MTurk environment it was made (and shown) in: the executor claims no request of
the other environment, so every path that calls MTurk for a request (approve, retry failed, resume) is bound
to it; `other_environment_refusal` is the check the service makes before it changes a request's state.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Protocol

from bot.config import MTurkEnvironment
from bot.logs import log_context
from bot.mturk import MTurkAccessError, MTurkGateway
from bot.preview import Held, HeldStatus, drifted
from bot.requests import GrantRequest, Operation, RequestState, WorkerOutcome, WorkerStatus, WorkerTarget
from bot.store import GrantStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GrantProgress:
    granted: int
    failed: int
    remaining: int
    calls_per_second: float


class GrantObserver(Protocol):
    """Told how a grant goes; the Slack layer implements it to update messages."""

    def grant_progressed(self, request: GrantRequest, progress: GrantProgress) -> None: ...

    def grant_finished(self, request: GrantRequest) -> None: ...


class _SilentObserver:
    def grant_progressed(self, request: GrantRequest, progress: GrantProgress) -> None:
        pass

    def grant_finished(self, request: GrantRequest) -> None:
        pass


class GrantExecutor:
    def __init__(
        self,
        store: GrantStore,
        gateway: MTurkGateway,
        *,
        max_concurrency: int,
        lease: timedelta = timedelta(seconds=60),
        flush_interval: float = 1.0,
        flush_size: int = 500,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.observer: GrantObserver = _SilentObserver()
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._lease = lease
        self._flush_interval = flush_interval
        self._flush_size = flush_size
        self._max_concurrency = max_concurrency
        self._dispatch_chunk = max(100, 4 * max_concurrency)
        self._calls = ThreadPoolExecutor(max_concurrency, thread_name_prefix="mturk-call")
        self._coordinators = ThreadPoolExecutor(4, thread_name_prefix="grant")
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._recovery: threading.Thread | None = None
        # Requests this executor is granting, each with an event set once its lease is lost.
        self._held: dict[int, threading.Event] = {}
        self._held_lock = threading.Lock()
        self._heartbeat = threading.Thread(target=self._keep_leases, name="grant-heartbeat", daemon=True)
        self._heartbeat.start()

    def submit(self, request_id: int) -> Future[RequestState | None]:
        """Carry out an approved request in the background."""
        return self._coordinators.submit(self._execute_logged, request_id)

    def resume_unfinished(self) -> list[int]:
        """Pick up approved requests that nobody is granting (a crash, or a replica that died)."""
        env = self.gateway.environment.value
        for request_id in self.store.stranded_request_ids(env):  # the other environment's: tell, do not touch
            if (request := self.store.get(request_id)) is not None:
                self.other_environment_refusal(request)
        ids = self.store.resumable_request_ids(env)
        for request_id in ids:
            self.submit(request_id)
        return ids

    def start_recovery_loop(self, interval: float | None = None) -> None:
        """Every `interval` seconds, resume requests whose executor's lease has expired."""
        period = interval if interval is not None else self._lease.total_seconds() / 2

        def loop() -> None:
            while not self._stopping.wait(period):
                try:
                    self.resume_unfinished()
                except Exception:
                    log.exception("recovery sweep failed; will try again")

        self._recovery = threading.Thread(target=loop, name="grant-recovery", daemon=True)
        self._recovery.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop starting calls, record the ones in flight, and hand unfinished requests back at once."""
        self._stopping.set()
        self._coordinators.shutdown(wait=True, cancel_futures=False)
        self._calls.shutdown(wait=True, cancel_futures=True)
        self._closed.set()  # only now: the heartbeat keeps the leases while the last calls are recorded

    def other_environment_refusal(self, request: GrantRequest, actor_id: str | None = None) -> str | None:
        """Why this executor will not call MTurk for `request` (made in the other environment), or None.

        The request is left as it is; its thread is told once (an outbox event recorded once per request).
        """
        here = self.gateway.environment
        if request.mturk_env == here.value:
            return None
        made_in = MTurkEnvironment(request.mturk_env).label
        if self.store.note_environment_mismatch(request.id, actor_id=actor_id):
            log.warning(
                "request #%s was made in the %s; this process runs in %s: left as it is",
                request.id,
                made_in,
                here.label,
            )
        return (
            f"Request #{request.id} was made in the {made_in}; this app now runs in {here.label}, so nothing was "
            f"granted and the request is left as it is. An app running in the {made_in} can still carry it out."
        )

    def execute(self, request_id: int) -> RequestState | None:
        """Grant every pending worker of the request; the final state if this call finished it."""
        env = self.gateway.environment.value
        if self._stopping.is_set() or not self.store.claim(
            request_id, owner=self.owner, lease=self._lease, mturk_env=env
        ):
            return None
        request = self.store.get(request_id)
        assert request is not None
        lost = threading.Event()
        with self._held_lock:
            self._held[request_id] = lost
        try:
            self._grant_pending(request, time.monotonic(), lost)
        finally:
            with self._held_lock:
                self._held.pop(request_id, None)
        state = self.store.finish(request_id, owner=self.owner)
        if state is None:
            # Stopped early, or lost the lease: the unfinished workers stay pending for the next claim.
            self.store.release(request_id, owner=self.owner)
            return None
        finished = self.store.get(request_id)
        assert finished is not None
        log.info(
            "request #%s finished: %s", request_id, state, extra=log_context(request_id=request_id, event="finished")
        )
        self.observer.grant_finished(finished)
        return state

    def _keep_leases(self) -> None:
        period = self._lease.total_seconds() / 3
        while not self._closed.wait(period):
            with self._held_lock:
                held = list(self._held.items())
            for request_id, lost in held:
                try:
                    if not lost.is_set() and not self.store.renew_lease(
                        request_id, owner=self.owner, lease=self._lease
                    ):
                        log.warning("request #%s: lease lost to another executor; stopping its calls", request_id)
                        lost.set()
                except Exception:
                    log.exception("renewing the lease of request #%s failed; will try again", request_id)

    def _execute_logged(self, request_id: int) -> RequestState | None:
        try:
            return self.execute(request_id)
        except Exception:
            log.exception("grant of request #%s stopped; its pending workers will be resumed", request_id)
            return None

    def _grant_pending(self, request: GrantRequest, started: float, lost: threading.Event) -> None:
        targets = self.store.pending_workers(request.id)
        in_doubt = self.store.in_doubt_worker_ids(request.id)
        if request.round == 1:  # a retry round grants what it is asked to, drift or not
            targets = self._leave_drifted(request, targets, in_doubt)
        counts = self.store.status_counts(request.id)
        granted, failed = counts[WorkerStatus.GRANTED], counts[WorkerStatus.FAILED]
        skipped = counts[WorkerStatus.SKIPPED]
        done_before = granted + failed
        access_error: list[str] = []
        calls = _CallWindow(self._calls, self._max_concurrency * 2)
        buffer: list[WorkerOutcome] = []
        last_flush = time.monotonic()
        next_index, dispatched_until = 0, 0
        while True:
            while not (self._stopping.is_set() or lost.is_set()) and calls.has_room() and next_index < len(targets):
                if next_index >= dispatched_until:
                    # Mark a chunk ahead in one statement: after a crash, only these are in doubt.
                    dispatched_until = next_index + self._dispatch_chunk
                    chunk = targets[next_index:dispatched_until]
                    self.store.mark_dispatched(request.id, [t.worker_id for t in chunk])
                target = targets[next_index]
                next_index += 1
                calls.start(self._grant_one, request, target, target.worker_id in in_doubt, access_error, lost)
            if not calls.pending:
                break
            for outcome in calls.collect(timeout=self._flush_interval):
                buffer.append(outcome)
                granted += outcome.status is WorkerStatus.GRANTED
                failed += outcome.status is WorkerStatus.FAILED
            if len(buffer) >= self._flush_size or time.monotonic() - last_flush >= self._flush_interval:
                self._record(request, buffer)
                if lost.is_set():
                    break  # another executor took the request over; the heartbeat found out
                last_flush = time.monotonic()
                rate = (granted + failed - done_before) / max(time.monotonic() - started, 1e-6)
                progress = GrantProgress(granted, failed, request.worker_count - granted - failed - skipped, rate)
                self.observer.grant_progressed(request, progress)
        calls.drain(buffer)
        self._record(request, buffer)

    def _leave_drifted(
        self, request: GrantRequest, targets: list[WorkerTarget], in_doubt: set[str]
    ) -> list[WorkerTarget]:
        """The targets still to grant once the workers whose state moved since the preview are recorded as left
        as they are (bot/preview.py decides). Read once per round, for workers no call was dispatched to yet:
        an in-doubt worker's state may have moved by our own call, and the gateway reads it back instead."""
        recorded = self.store.previous_states(request.id)
        fresh = [t for t in targets if t.worker_id not in in_doubt]
        try:
            moved, now = drifted(
                self.gateway, request.qualification_type_id, recorded, fresh, concurrency=self._max_concurrency
            )
        except MTurkAccessError:
            return targets  # nothing can be read; each grant call will record the same refusal
        if not moved:
            return targets
        if request.expiry_of is not None:
            # An expiry revokes only the score its grant gave: a worker holding anything else now is left alone,
            # and that is the expiry done right, not a failure to retry.
            moved = [left_alone(o, now[o.worker_id]) for o in moved]
        self.store.record_drift(request.id, moved, now, request.round)
        left = {o.worker_id for o in moved}
        log.info("request #%s: %s worker(s) changed since the preview; left as they are", request.id, len(left))
        return [t for t in targets if t.worker_id not in left]

    def _record(self, request: GrantRequest, buffer: list[WorkerOutcome]) -> None:
        """Write the finished workers in one transaction (the heartbeat, not this, keeps the lease)."""
        self.store.record_outcomes(request.id, buffer, request.round)
        buffer.clear()

    def _grant_one(
        self,
        request: GrantRequest,
        target: WorkerTarget,
        in_doubt: bool,
        access_error: list[str],
        lost: threading.Event,
    ) -> WorkerOutcome | None:
        """The worker's outcome, or None if the call was not made (the lease was lost: the worker stays pending).

        Grants or revokes, as the worker's operation says."""
        if lost.is_set():
            return None
        if access_error:
            return _failed(target, "AccessError", access_error[0])
        try:
            # In doubt: a call made before a crash may have reached MTurk; the gateway reads it back first.
            if target.operation is Operation.REVOKE:
                return self.gateway.revoke(
                    target, request.qualification_type_id, request.worker_message, may_have_landed=in_doubt
                )
            return self.gateway.grant(
                target, request.qualification_type_id, request.send_notification, may_have_landed=in_doubt
            )
        except MTurkAccessError as error:
            access_error.append(str(error))
            return _failed(target, "AccessError", str(error))


def left_alone(outcome: WorkerOutcome, now: Held) -> WorkerOutcome:
    """An expiring grant's worker whose qualification moved since it was granted: skipped, with a note why."""
    if now.status is HeldStatus.GRANTED:
        note = f"re-granted since by another request (holds {now.value}): left alone"
    else:
        note = "no longer holds it: left alone"
    return replace(outcome, status=WorkerStatus.SKIPPED, error_code=None, error_message=note, hint=None)


class _CallWindow:
    """At most `limit` calls in flight, so a 10,000-worker request never queues 10,000 futures at once."""

    def __init__(self, pool: ThreadPoolExecutor, limit: int) -> None:
        self._pool = pool
        self._limit = limit
        self.pending: set[Future[WorkerOutcome | None]] = set()

    def has_room(self) -> bool:
        return len(self.pending) < self._limit

    def start(self, fn: object, *args: object) -> None:
        self.pending.add(self._pool.submit(fn, *args))  # type: ignore[arg-type]

    def collect(self, timeout: float) -> list[WorkerOutcome]:
        done, self.pending = wait(self.pending, timeout=timeout, return_when=FIRST_COMPLETED)
        return [outcome for future in done if (outcome := future.result()) is not None]

    def drain(self, into: list[WorkerOutcome]) -> None:
        """Wait for calls already started: their outcome must be recorded, whatever made us stop."""
        done, _ = wait(self.pending)
        into.extend(outcome for future in done if (outcome := future.result()) is not None)
        self.pending = set()


def _failed(target: WorkerTarget, code: str, message: str) -> WorkerOutcome:
    return WorkerOutcome(
        target.worker_id, target.integer_value, WorkerStatus.FAILED, code, message, operation=target.operation
    )
