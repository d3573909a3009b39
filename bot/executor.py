"""Carries out approved requests: claims them, calls MTurk for their pending workers, records outcomes.

One executor per process, carrying out any number of requests at once. Which worker is called next is
decided by the fair scheduler (bot/scheduling.py), not by threads: one dispatcher thread keeps up to
`max_concurrency` calls in flight across all active requests, asking the scheduler each time, and never
waits for the database. The phases around a request's calls run on a small pool of their own, so they
never hold up another request's calls: the claim at the start; each page of pending workers (read in
order, `page_size` at a time, so a 100,000-worker request is never held whole: its drift check, then
marked dispatched in one statement, then fed to the scheduler while the page before is still being
called); the last writes and the final state at the end. Outcomes are buffered per request and written in
batches by one recorder thread (about once a second, or sooner when a buffer fills), which also reports
progress: the hot path makes no database round-trip per call.

The claim is a lease in the database, held by this executor for as long as the request is in `_held`
(from its claim until its final state is written or the lease is released) and renewed by the heartbeat
thread, so a second replica never works on the same request and a process that dies leaves its unfinished
workers to whoever claims the request after the lease expires. The heartbeat, not the threads doing the
request's work, keeps the lease: a recorder or a phase held up (by the database, or by anything else) must
not let the lease lapse while its calls are in flight, or the next owner could call MTurk for the same
workers. A lost lease stops only that request's dispatch.

A request runs only in the MTurk environment it was made (and shown) in: the executor claims no request of
the other environment, so every path that calls MTurk for a request (approve, retry failed, resume) is bound
to it; `other_environment_refusal` is the check the service makes before it changes a request's state.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Protocol

from bot.config import MTurkEnvironment
from bot.logs import log_context
from bot.mturk import MTurkAccessError, MTurkGateway
from bot.preview import Held, HeldStatus, PagedDriftCheck
from bot.requests import GrantRequest, Operation, RequestState, WorkerOutcome, WorkerStatus, WorkerTarget
from bot.scheduling import FairScheduler
from bot.store import GrantStore, PendingWorker

log = logging.getLogger(__name__)

# Pending workers read per page. Each page is marked dispatched before its calls (after a crash, its workers
# are read back before they are called again), so this bounds the read-backs a crash costs, and memory.
PAGE_SIZE = 1000


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
        head_start: int = 16,
        page_size: int | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.observer: GrantObserver = _SilentObserver()
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._lease = lease
        self._flush_interval = flush_interval
        self._flush_size = flush_size
        self._max_concurrency = max_concurrency
        # Pending workers read (and marked dispatched: in doubt after a crash) per page; the next page is read
        # when half of this one is handed out, so at most 1.5 pages are marked ahead of their calls.
        self._page_size = page_size or PAGE_SIZE
        self._calls = ThreadPoolExecutor(max_concurrency, thread_name_prefix="mturk-call")
        # Starting and finishing a request (claim, drift check, last writes): not the unit of scheduling.
        self._phases = ThreadPoolExecutor(4, thread_name_prefix="grant-phase")
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._recovery: threading.Thread | None = None
        # The dispatcher's state, under one condition: the active requests, the scheduler, calls in flight.
        self._state = threading.Condition()
        self._scheduler: FairScheduler[WorkerTarget] = FairScheduler(head_start)
        self._runs: dict[int, _Run] = {}
        self._in_flight = 0
        self._flush_wanted = threading.Event()
        # Requests this executor holds the lease of, each with an event set once its lease is lost.
        self._held: dict[int, threading.Event] = {}
        self._held_lock = threading.Lock()
        self._heartbeat = threading.Thread(target=self._keep_leases, name="grant-heartbeat", daemon=True)
        self._heartbeat.start()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="grant-dispatch", daemon=True)
        self._dispatcher.start()
        self._recorder = threading.Thread(target=self._record_loop, name="grant-record", daemon=True)
        self._recorder.start()

    def submit(self, request_id: int) -> Future[RequestState | None]:
        """Carry out an approved request in the background; the future has its final state if this finished it."""
        result: Future[RequestState | None] = Future()
        try:
            self._phases.submit(self._start_logged, request_id, result)
        except RuntimeError:  # shut down
            result.set_result(None)
        return result

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
        with self._state:
            self._state.notify_all()
        self._dispatcher.join()
        with self._state:
            self._state.wait_for(lambda: self._in_flight == 0, timeout)
        self._phases.shutdown(wait=True, cancel_futures=False)  # the last writes and releases
        self._calls.shutdown(wait=True, cancel_futures=True)
        self._closed.set()  # only now: the heartbeat keeps the leases while the last calls are recorded
        self._recorder.join()

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
        """Grant every pending worker of the request and wait; the final state if this call finished it."""
        return self.submit(request_id).result()

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
                        with self._state:
                            self._state.notify_all()
                except Exception:
                    log.exception("renewing the lease of request #%s failed; will try again", request_id)

    # The start phase: claim, read what is left to do, hand it to the scheduler.

    def _start_logged(self, request_id: int, result: Future[RequestState | None]) -> None:
        try:
            run = self._start(request_id, result)
        except Exception:
            log.exception("grant of request #%s stopped; its pending workers will be resumed", request_id)
            result.set_result(None)
            return
        if run is not None:
            self._admit(run)

    def _start(self, request_id: int, result: Future[RequestState | None]) -> _Run | None:
        env = self.gateway.environment.value
        if self._stopping.is_set() or not self.store.claim(
            request_id, owner=self.owner, lease=self._lease, mturk_env=env
        ):
            result.set_result(None)
            return None
        request = self.store.get(request_id)
        assert request is not None
        lost = threading.Event()
        with self._held_lock:
            self._held[request_id] = lost
        try:
            counts = self.store.status_counts(request.id)
            drift = self._drift_check(request)
        except Exception:
            with self._held_lock:  # the lease lapses; the recovery loop resumes the request
                del self._held[request_id]
            raise
        granted, failed = counts[WorkerStatus.GRANTED], counts[WorkerStatus.FAILED]
        return _Run(
            request,
            lost,
            result,
            drift,
            started=time.monotonic(),
            granted=granted,
            failed=failed,
            skipped=counts[WorkerStatus.SKIPPED],
            done_before=granted + failed,
        )

    def _drift_check(self, request: GrantRequest) -> PagedDriftCheck | None:
        """The first round's check of workers whose state moved since the preview (a retry round grants what it
        is asked to, drift or not). Read for workers no call was dispatched to yet: an in-doubt worker's state
        may have moved by our own call, and the gateway reads it back instead."""
        if request.round != 1 or not (checked := self.store.drift_checkable_count(request.id)):
            return None
        return PagedDriftCheck(
            self.gateway,
            request.qualification_type_id,
            checked,
            lambda ids: self.store.pending_among(request.id, ids),
            concurrency=self._max_concurrency,
        )

    def _admit(self, run: _Run) -> None:
        with self._state:
            self._runs[run.request.id] = run
            self._scheduler.admit(run.request.id, more_coming=True)
            run.loading = True
        self._load_page(run)

    # Pages: read, drift-checked, marked dispatched, then fed to the scheduler (on the phase pool).

    def _load_next_page(self, run: _Run) -> None:
        """Read the run's next page on the phase pool (the caller set run.loading under the state lock)."""
        try:
            self._phases.submit(self._load_page, run)
        except RuntimeError:  # shutting down: nothing more is handed out
            self._feed(run, [], last=True)

    def _load_page(self, run: _Run) -> None:
        targets: list[WorkerTarget] = []
        last = True
        try:
            if not (self._stopping.is_set() or run.lost.is_set()):
                page = self.store.pending_page(run.request.id, run.loaded_through, self._page_size)
                last = len(page) < self._page_size
                targets = self._prepare(run, page)
        except Exception:
            log.exception("request #%s: reading its next workers failed; they will be resumed", run.request.id)
            run.lost.set()  # stop this request only; it is released, and resumed by the next claim
            targets, last = [], True
        self._feed(run, targets, last=last)

    def _prepare(self, run: _Run, page: list[PendingWorker]) -> list[WorkerTarget]:
        """The page's targets still to call, marked dispatched (the drifted ones recorded as left alone)."""
        if not page:
            return []
        run.loaded_through = page[-1].position
        run.in_doubt.update(p.target.worker_id for p in page if p.dispatched)
        targets = [p.target for p in page]
        if run.drift is not None:
            recorded = {p.target.worker_id: p.previous for p in page if p.previous is not None and not p.dispatched}
            targets = self._leave_drifted(run, recorded, targets)
        self.store.mark_dispatched_through(run.request.id, page[0].position, page[-1].position)
        return targets

    def _feed(self, run: _Run, targets: list[WorkerTarget], *, last: bool) -> None:
        with self._state:
            run.loading = False
            self._scheduler.feed(run.request.id, targets, more_coming=not last)
            # A page with little or nothing left to call (its workers drifted, or were done before): read on now,
            # since no dispatch of this request may come to ask for the next page.
            load = self._wants_next_page(run)
            finished = self._dispatch_over(run)
            self._state.notify_all()
        if load:
            self._load_next_page(run)
        if finished:
            self._spawn_finish(run)

    # Dispatch: one thread, up to max_concurrency calls in flight across every active request.

    def _dispatch_loop(self) -> None:
        while True:
            try:
                if not self._dispatch_next():
                    return
            except Exception:  # a bug here must not stop every request's calls for good
                log.exception("dispatching failed; going on")
                time.sleep(0.1)

    def _dispatch_next(self) -> bool:
        """Start the next call (or finish what has ended); False once stopping."""
        ended: list[_Run] = []
        with self._state:
            pick = None
            while pick is None:
                ended += self._withdraw_stopped()
                if self._stopping.is_set():
                    break
                if self._in_flight < self._max_concurrency:
                    pick = self._scheduler.next_call()
                if pick is None and not ended:
                    self._state.wait(0.2)
                elif pick is None:
                    break
            if pick is not None:
                request_id, target = pick
                run = self._runs[request_id]
                self._in_flight += 1
                run.in_flight += 1
                load = self._wants_next_page(run)
        for finished in ended:
            self._spawn_finish(finished)
        if pick is None:
            return not self._stopping.is_set()
        if load:
            self._load_next_page(run)
        self._start_call(run, target)
        return True

    def _wants_next_page(self, run: _Run) -> bool:
        """Whether to read the run's next page now (under the state lock): half of this one is handed out."""
        request_id = run.request.id
        if run.loading or self._scheduler.remaining(request_id) <= self._scheduler.ready(request_id):
            return False  # a page is being read, or none is left to read
        if self._scheduler.ready(request_id) > self._page_size // 2:
            return False
        run.loading = True
        return True

    def _withdraw_stopped(self) -> list[_Run]:
        """Withdraw the requests that must stop (lease lost, or stopping); those ready to finish."""
        ended = []
        for request_id, run in self._runs.items():
            if (self._stopping.is_set() or run.lost.is_set()) and self._scheduler.remaining(request_id):
                self._scheduler.withdraw(request_id)
            if self._dispatch_over(run):
                ended.append(run)
        return ended

    def _start_call(self, run: _Run, target: WorkerTarget) -> None:
        try:
            self._calls.submit(self._call, run, target)
        except Exception:
            log.exception("request #%s: could not start a call; its pending workers will be resumed", run.request.id)
            run.lost.set()  # stop this request only; it is released, and resumed by the next claim
            self._call_ended(run, None)

    def _call(self, run: _Run, target: WorkerTarget) -> None:
        outcome = None
        try:
            in_doubt = target.worker_id in run.in_doubt
            outcome = self._grant_one(run.request, target, in_doubt, run.access_error, run.lost)
        except Exception:
            log.exception("request #%s: the call for a worker failed unexpectedly; it stays in doubt", run.request.id)
        self._call_ended(run, outcome)

    def _call_ended(self, run: _Run, outcome: WorkerOutcome | None) -> None:
        with self._state:
            if outcome is not None:
                run.buffer.append(outcome)
                run.granted += outcome.status is WorkerStatus.GRANTED
                run.failed += outcome.status is WorkerStatus.FAILED
            self._in_flight -= 1
            run.in_flight -= 1
            finished = self._dispatch_over(run)
            full = len(run.buffer) >= self._flush_size
            self._state.notify_all()
        if full:
            self._flush_wanted.set()
        if finished:
            self._spawn_finish(run)

    def _dispatch_over(self, run: _Run) -> bool:
        """True once, for the caller to finish the run: nothing left to hand out or read, no call in flight."""
        if run.finishing or run.in_flight or run.loading or self._scheduler.remaining(run.request.id):
            return False
        run.finishing = True
        return True

    # Recording: outcomes in batches, progress with them.

    def _record_loop(self) -> None:
        while not self._closed.is_set():
            self._flush_wanted.wait(self._flush_interval)
            self._flush_wanted.clear()
            with self._state:
                runs = [run for run in self._runs.values() if not run.finishing]
            for run in runs:
                if self._write_buffer(run):
                    self._report_progress(run)

    def _write_buffer(self, run: _Run) -> bool:
        """Write the run's finished workers in one transaction (the heartbeat, not this, keeps the lease)."""
        with run.write_lock:
            with self._state:
                batch, run.buffer = run.buffer, []
            if not batch:
                return True
            try:
                self.store.record_outcomes(run.request.id, batch, run.request.round)
            except Exception:
                log.exception("request #%s: writing outcomes failed; will try again", run.request.id)
                with self._state:
                    run.buffer[:0] = batch
                return False
            return True

    def _report_progress(self, run: _Run) -> None:
        with self._state:
            if run.finishing or run.lost.is_set():
                return
            granted, failed = run.granted, run.failed
        rate = (granted + failed - run.done_before) / max(time.monotonic() - run.started, 1e-6)
        remaining = run.request.worker_count - granted - failed - run.skipped
        self.observer.grant_progressed(run.request, GrantProgress(granted, failed, remaining, rate))

    # The finish phase: last writes, the final state or the lease handed back.

    def _spawn_finish(self, run: _Run) -> None:
        try:
            self._phases.submit(self._finish_logged, run)
        except RuntimeError:  # shutting down: finish here
            self._finish_logged(run)

    def _finish_logged(self, run: _Run) -> None:
        try:
            run.result.set_result(self._finish(run))
        except Exception:
            log.exception("grant of request #%s stopped; its pending workers will be resumed", run.request.id)
            self._forget(run)
            run.result.set_result(None)

    def _forget(self, run: _Run) -> None:
        request_id = run.request.id
        with self._held_lock:
            if self._held.get(request_id) is run.lost:
                del self._held[request_id]
        with self._state:
            if self._runs.get(request_id) is run:
                del self._runs[request_id]
                self._scheduler.forget(request_id)

    def _finish(self, run: _Run) -> RequestState | None:
        request_id = run.request.id
        written = self._write_buffer(run)
        self._forget(run)  # before the final state: a retry round may be claimed as soon as it is written
        if not written:
            return None  # the lease lapses and the next claim reads the unrecorded calls back
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

    def _leave_drifted(self, run: _Run, recorded: dict[str, Held], targets: list[WorkerTarget]) -> list[WorkerTarget]:
        """The page's targets still to grant once the workers whose state moved since the preview are recorded as
        left as they are (bot/preview.py decides)."""
        request = run.request
        assert run.drift is not None
        try:
            moved, now = run.drift.page(recorded, targets)
        except MTurkAccessError:
            run.drift = None  # nothing can be read; each grant call will record the same refusal
            return targets
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


@dataclass(eq=False)
class _Run:
    """One request being carried out: what its calls need, and its outcomes not written yet."""

    request: GrantRequest
    lost: threading.Event
    result: Future[RequestState | None]
    drift: PagedDriftCheck | None  # the first round's drift check, page by page
    started: float
    granted: int
    failed: int
    skipped: int
    done_before: int
    in_doubt: set[str] = field(default_factory=set)  # dispatched by an executor that died before recording them
    access_error: list[str] = field(default_factory=list)
    buffer: list[WorkerOutcome] = field(default_factory=list)
    in_flight: int = 0
    loaded_through: int = -1  # the position of the last worker read
    loading: bool = False  # a page is being read
    finishing: bool = False
    write_lock: threading.Lock = field(default_factory=threading.Lock)


def _failed(target: WorkerTarget, code: str, message: str) -> WorkerOutcome:
    return WorkerOutcome(
        target.worker_id, target.integer_value, WorkerStatus.FAILED, code, message, operation=target.operation
    )
