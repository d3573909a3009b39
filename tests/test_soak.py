"""Soak: two replicas on PostgreSQL, faults everywhere, double clicks, retries, each replica killed and restarted.

Besides grant requests it runs, while the faults go on: revoke requests (`/grant-qual revoke`) for workers granted
earlier (some hold the qualification; those who don't are skipped, not called), undos (Undo on a finished
request's summary, then the undo request approved by another approver), and expiries of grants made with
`expires=30d`. The expiry sweeper cannot be driven by the clock of `python app.py` processes, so *Revoke now* on
the grant's message stands for it: it is the same expiry path (one expiry request, stored once, carried out by
the executor).

Bounded (a few hundred requests, well under the CI budget); prints what it did and checks the invariants, from
the store's outcomes against the fake MTurk's calls: every worker done by a request was called exactly once for
it (grant or revoke; duplicates and lost calls counted), every request final with exactly one final thread post
and one DM to its requester, nothing granted that was not approved.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.mturk import NOT_HELD
from bot.requests import DeliveryState, EventKind, GrantRequest, Operation, RequestState, WorkerStatus
from bot.slack.blocks import UNDO_ACTION
from bot.slack.expiry_blocks import REVOKE_NOW_ACTION
from bot.store import GrantStore, create_database_engine
from tests.app_process import AppProcess
from tests.conftest import (
    APPROVER,
    APPROVER_2,
    CHANNEL,
    QUAL,
    REQUESTER,
    SIGNING_SECRET,
    app_environment,
    reject_reason_values,
)
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackSender

GRANTS = 180  # grant requests; every sixth expires (expires=30d) and is revoked now once done
REVOKES = 30  # revoke requests, for workers of earlier grant requests
UNDOS = 20  # finished grant requests undone
SEED = 20261129
REJECT_FORM = "reject_request_modal"
FINISHED = (RequestState.DONE, RequestState.FAILED)


@pytest.fixture
def replicas(
    fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str, tmp_path: Path
) -> Iterator[list[AppProcess]]:
    env = app_environment(fake_slack, fake_mturk, postgres_url, GRANT_LEASE_SECONDS="3", MTURK_MAX_CONCURRENCY="8")
    started = [AppProcess(env, tmp_path, name=f"replica{i}") for i in range(2)]
    for replica in started:
        replica.start()
    yield started
    for replica in started:
        replica.stop()


class Driver:
    """Plays the requesters and approvers against whichever replica is up, as Slack would deliver."""

    def __init__(self, replicas: list[AppProcess], fake_slack: FakeSlack, store: GrantStore) -> None:
        self.replicas = replicas
        self.fake_slack = fake_slack
        self.store = store
        self.random = random.Random(SEED)
        self.lock = threading.Lock()
        self.sent = Counter[str]()

    def send(self, action: str, *args: object, **kwargs: object) -> None:
        """Deliver to a random replica; on a dead one (connection refused), deliver to another, as a retry would."""
        for _ in range(200):
            with self.lock:
                replica = self.random.choice(self.replicas)
            sender = SlackSender(replica.events_url, SIGNING_SECRET, self.fake_slack.response_url(""))
            try:
                status = getattr(sender, action)(*args, **kwargs).status
            except OSError:
                status = 0
            if status == 200:
                with self.lock:
                    self.sent[action] += 1
                return
            time.sleep(0.05)
        raise AssertionError(f"no replica took {action}")

    def chance(self, p: float) -> bool:
        with self.lock:
            return self.random.random() < p

    def pick(self, choices: list) -> object:
        with self.lock:
            return self.random.choice(choices)

    def click_repeatedly(self, approvers: list[str], action: str, value: str, message_ts: str) -> None:
        """Double clicks, several approvers, Slack retries."""
        for click in range(int(self.pick([1, 1, 2, 3]))):  # type: ignore[call-overload]
            retry = click if self.chance(0.3) else None
            self.send("click", self.pick(approvers), action, value, message_ts=message_ts, retry_num=retry)

    def decide(self, request_id: int, approve: bool, approvers: list[str]) -> None:
        ts = self.store.get(request_id).message_ts  # type: ignore[union-attr]
        if approve:
            self.click_repeatedly(approvers, "approve_request", str(request_id), ts)  # type: ignore[arg-type]
            return
        for click in range(int(self.pick([1, 1, 2]))):  # type: ignore[call-overload]
            approver = self.pick(approvers)
            retry = click if self.chance(0.3) else None
            self.send("click", approver, "reject_request", str(request_id), message_ts=ts, retry_num=retry)
            metadata = json.dumps({"request_id": request_id, "channel_id": CHANNEL, "message_ts": ts})
            values = reject_reason_values(f"soak-{request_id}")
            self.send("submit_view", approver, values, private_metadata=metadata, callback_id=REJECT_FORM)

    def wait_for(self, find: Callable[[], object], what: str, timeout: float = 150) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := find():
                return found
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def finished(self, request_id: int) -> GrantRequest:
        def done() -> GrantRequest | None:
            request = self.store.get(request_id)
            return request if request and request.state in FINISHED and request.summary_ts else None

        return self.wait_for(done, f"request #{request_id} finished with its summary")  # type: ignore[return-value]

    def posted(self, find: Callable[[], GrantRequest | None], what: str) -> GrantRequest:
        """A request once out of its preview: posted for approval (or already final)."""

        def out_of_preview() -> GrantRequest | None:
            request = find()
            if request is None or request.state is RequestState.PREVIEWING:
                return None
            return request if request.message_ts or request.state.is_final else None

        return self.wait_for(out_of_preview, what)  # type: ignore[return-value]


def test_soak_two_replicas_with_faults_and_a_crash(
    replicas: list[AppProcess], fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str
) -> None:
    fake_mturk.random_faults = {"ServiceFault": 0.04, "ThrottlingException": 0.04}
    fake_mturk.random_slow = (0.02, 0.5)
    fake_slack.random_faults = {429: 0.03, 503: 0.03, "drop": 0.02}
    store = GrantStore(create_database_engine(postgres_url))
    driver = Driver(replicas, fake_slack, store)
    workers_of = {i: [f"A{i:05d}{j:06d}" for j in range(1 + i % 5)] for i in range(GRANTS)}

    def submit(i: int) -> None:
        expires = " expires=30d" if i % 6 == 5 else ""
        driver.send("command", REQUESTER, f"{QUAL} {' '.join(workers_of[i])}{expires} reason=soak-{i}")

    started = time.monotonic()
    _in_parallel(submit, range(GRANTS))
    posted = fake_slack.wait_for(lambda: _all_posted(store, GRANTS), timeout=120)
    all_posted_after = time.monotonic() - started
    index_of = {r.id: int(r.reason.removeprefix("soak-")) for r in posted}
    id_of = {i: request_id for request_id, i in index_of.items()}
    decisions = {request.id: driver.random.random() < 0.75 for request in posted}
    follow_ups = _follow_ups(driver, decisions, index_of, id_of, workers_of)

    kills: list[str] = []
    killer = threading.Thread(target=_kill_and_restart, args=(replicas, driver, fake_mturk, kills))
    killer.start()
    _in_parallel(lambda request_id: driver.decide(request_id, decisions[request_id], [APPROVER, APPROVER_2]), decisions)
    all_clicked_after = time.monotonic() - started
    _in_parallel(lambda follow_up: follow_up(), follow_ups)
    follow_ups_after = time.monotonic() - started
    killer.join()

    try:
        fake_slack.wait_for(lambda: _all_told(store), timeout=150)
    except AssertionError:
        print("\n".join(_unfinished(store)))
        for replica in replicas:  # the app's own story, without the noise of the Slack faults injected
            lines = [line for line in replica.log().splitlines() if "slack_sdk" not in line and "Slack" not in line]
            print("\n".join(lines[-80:]))
        raise
    all_told_after = time.monotonic() - started
    time.sleep(2.0)  # let any late duplicate land before counting

    requests = store.requests()
    outcomes = {r.id: store.outcomes(r.id) for r in requests}
    expected_grants, expected_revokes = Counter[str](), Counter[str]()
    for request in requests:
        if request.state not in FINISHED:
            continue
        for outcome in outcomes[request.id]:
            if outcome.status is not WorkerStatus.GRANTED:
                continue  # failed, or skipped: not called (or not to its end)
            if outcome.operation is Operation.GRANT:
                expected_grants[outcome.worker_id] += 1
            elif outcome.error_code != NOT_HELD:  # NOT_HELD: MTurk refused, the worker held nothing to revoke
                expected_revokes[outcome.worker_id] += 1
    grants, revokes = fake_mturk.grant_counts(), fake_mturk.revoke_counts()
    duplicates = _beyond(grants, expected_grants) + _beyond(revokes, expected_revokes)
    lost = _beyond(expected_grants, grants) + _beyond(expected_revokes, revokes)
    rejected_workers = {
        o.worker_id
        for r in requests
        if r.state is RequestState.REJECTED
        for o in outcomes[r.id]
        if o.operation is Operation.GRANT
    }
    revoke_requests = [r for r in requests if r.undo_of is None and r.expiry_of is None and r.revoke_count]
    undos = [r for r in requests if r.undo_of is not None]
    expiries = [r for r in requests if r.expiry_of is not None]
    skipped = {o.worker_id for r in revoke_requests for o in outcomes[r.id] if o.status is WorkerStatus.SKIPPED}
    revoke_calls = {params.get("WorkerId") for params in fake_mturk.calls("DisassociateQualificationFromWorker")}
    not_held = sum(o.error_code == NOT_HELD for r in requests for o in outcomes[r.id])
    final_posts = _final_posts_per_request(fake_slack, requests)
    rejected = len([r for r in requests if r.state is RequestState.REJECTED])
    print(
        f"\nsoak: requests {len(requests)}, approved {len(requests) - rejected}, rejected {rejected}, "
        f"MTurk faults injected {dict(fake_mturk.injected_faults)}, Slack faults injected "
        f"{dict(fake_slack.injected_faults)}, deliveries {dict(driver.sent)}, grants {grants.total()}, "
        f"revokes {revokes.total()}, duplicates: {duplicates}, lost: {lost}; all posted after "
        f"{all_posted_after:.0f} s, all clicked after {all_clicked_after:.0f} s, follow-ups after "
        f"{follow_ups_after:.0f} s, all final and told after {all_told_after:.0f} s"
    )
    print(
        f"soak: revoke requests {len(revoke_requests)} (workers skipped, not holding: {len(skipped)}), undos "
        f"{len(undos)} (of {sum(o.operation is Operation.REVOKE for r in undos for o in outcomes[r.id])} revokes), "
        f"expiries {len(expiries)} (of {sum(len(outcomes[r.id]) for r in expiries)} workers), not held: {not_held}; "
        f"{'; '.join(kills)}"
    )
    assert all(r.state.is_final for r in requests)
    approved = [r for r in requests if decisions.get(r.id) or r.undo_of is not None or r.expiry_of is not None]
    assert {r.state for r in approved} <= {RequestState.DONE}, [(r.id, r.state) for r in approved]
    assert undos and expiries and revoke_requests and skipped
    assert duplicates == 0 and lost == 0
    assert not skipped & revoke_calls, "a worker skipped (not holding) was not called at all"
    assert not rejected_workers & set(grants)  # nothing granted that was not approved
    assert all(count == 1 for count in final_posts.values()), final_posts
    assert len(final_posts) == len(requests)
    assert not _posted_out_of_order(fake_slack, requests)
    for requester in (REQUESTER, APPROVER):  # an undo's requester is the approver who clicked Undo
        # The outbox's DMs carry their event; a note the app sends when a click's response URL fails (Slack's
        # injected 5xx) or a long preview's progress carries none, and is not a request's one DM.
        sent = fake_slack.dms_to(requester)
        notes = [dm.get("text", "")[:120] for dm in sent if not _about(dm)]
        if notes:
            print(f"soak: DMs to {requester} outside the outbox: {notes}")
        dms = Counter(_about(dm).get("request_id") for dm in sent if _about(dm))
        assert dms == {r.id: 1 for r in requests if r.requester_id == requester}, "one DM per request to its requester"


def _follow_ups(
    driver: Driver,
    decisions: dict[int, bool],
    index_of: dict[int, int],
    id_of: dict[int, int],
    workers_of: dict[int, list[str]],
) -> list[Callable[[], None]]:
    """What the approvers and the requester do once grant requests finish: undo, revoke now, revoke workers."""
    store = driver.store
    approved = [request_id for request_id, yes in decisions.items() if yes]
    undo_ids = [request_id for request_id in approved if index_of[request_id] % 6 == 1][:UNDOS]
    expiring_ids = [request_id for request_id in approved if index_of[request_id] % 6 == 5]
    sources = [i for i in range(GRANTS) if i % 6 in (2, 3)]
    holders = [(w, id_of[i]) for i in sources if decisions[id_of[i]] for w in workers_of[i]]
    non_holders = [(w, id_of[i]) for i in sources if not decisions[id_of[i]] for w in workers_of[i]]
    revokes: list[list[tuple[str, int]]] = [[] for _ in range(REVOKES)]
    for k, (worker, request_id) in enumerate(holders[: REVOKES * 3]):
        revokes[k % REVOKES].append((worker, request_id))
    for k, (worker, request_id) in enumerate(non_holders[: REVOKES // 2]):
        revokes[(2 * k) % REVOKES].append((worker, request_id))

    def undo(request_id: int) -> None:
        request = driver.finished(request_id)
        if not store.changed_workers(request_id):
            return  # nothing it changed: Undo refuses, no undo request
        driver.click_repeatedly([APPROVER], UNDO_ACTION, str(request_id), request.summary_ts)  # type: ignore[arg-type]
        undo_id = driver.wait_for(lambda: store.get(request_id).undone_by, f"the undo of #{request_id}")  # type: ignore[union-attr]
        undo_request = driver.posted(lambda: store.get(undo_id), f"undo #{undo_id} posted")  # type: ignore[arg-type]
        if undo_request.state is RequestState.PENDING:
            driver.decide(undo_request.id, True, [APPROVER_2])  # another approver than the one who clicked Undo
            if driver.chance(0.3):  # the clicker's own approval: refused, nothing changes
                ts = undo_request.message_ts
                driver.send("click", APPROVER, "approve_request", str(undo_request.id), message_ts=ts)

    def revoke_now(request_id: int) -> None:
        request = driver.finished(request_id)
        driver.click_repeatedly([APPROVER, APPROVER_2], REVOKE_NOW_ACTION, str(request_id), request.message_ts)  # type: ignore[arg-type]

    def revoke(k: int) -> None:
        targets = revokes[k]
        for request_id in {request_id for _, request_id in targets}:
            driver.wait_for(lambda: store.get(request_id).state.is_final, f"#{request_id} final")  # type: ignore[union-attr]  # noqa: B023
        reason = f"soak-revoke-{k}"
        driver.send("command", REQUESTER, f"revoke {QUAL} {' '.join(w for w, _ in targets)} reason={reason}")
        request = driver.posted(
            lambda: next((r for r in store.requests() if r.reason == reason), None), f"revoke {k} posted"
        )
        if request.state is RequestState.PENDING:
            decisions[request.id] = driver.chance(0.75)
            driver.decide(request.id, decisions[request.id], [APPROVER, APPROVER_2])

    work: list[Callable[[], None]] = []
    work += [lambda request_id=request_id: undo(request_id) for request_id in undo_ids]  # type: ignore[misc]
    work += [lambda request_id=request_id: revoke_now(request_id) for request_id in expiring_ids]  # type: ignore[misc]
    work += [lambda k=k: revoke(k) for k in range(REVOKES) if revokes[k]]  # type: ignore[misc]
    driver.random.shuffle(work)
    return work


def _beyond(counts: Counter[str], expected: Counter[str]) -> int:
    """Calls in `counts` beyond those `expected`, over all workers."""
    return sum(max(0, n - expected[worker]) for worker, n in counts.items())


def _in_parallel(work: object, items: object, threads: int = 8) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, item) for item in items]:  # type: ignore[arg-type, attr-defined]
            future.result()


def _kill_and_restart(replicas: list[AppProcess], driver: Driver, fake_mturk: FakeMTurk, kills: list[str]) -> None:
    """Kill one replica while grants are in flight, then the other while revokes (undos, expiries) are."""
    started = time.monotonic()
    calls = {"grants": fake_mturk.grant_counts, "revokes": fake_mturk.revoke_counts}
    for replica, counted, at in ((replicas[0], "grants", 100), (replicas[1], "revokes", 30)):
        deadline = time.monotonic() + 90
        while calls[counted]().total() < at and time.monotonic() < deadline:
            time.sleep(0.05)
        with driver.lock:
            replica.kill()
        kills.append(
            f"{replica.log_path.stem} killed after {time.monotonic() - started:.0f} s, at "
            f"{fake_mturk.grant_counts().total()} grants and {fake_mturk.revoke_counts().total()} revokes"
        )
        time.sleep(1.0)
        replica.start()


def _all_posted(store: GrantStore, count: int) -> list:
    requests = store.requests()
    return requests if len(requests) >= count and all(r.message_ts for r in requests) else []


def _all_told(store: GrantStore) -> bool:
    requests = store.requests()
    if not all(r.state.is_final for r in requests):
        return False
    events = [e for r in requests for e in store.events(r.id)]
    return all(e.delivery_state is DeliveryState.DELIVERED for e in events) and any(
        e.kind is EventKind.FINISHED for e in events
    )


def _unfinished(store: GrantStore) -> list[str]:
    lines = []
    for request in store.requests():
        undelivered = [e for e in store.events(request.id) if e.delivery_state is not DeliveryState.DELIVERED]
        if not request.state.is_final or undelivered:
            counts = store.status_counts(request.id)
            lines.append(f"#{request.id} {request.state} {counts} undelivered={undelivered}")
    return lines


def _kinds_posted(fake_slack: FakeSlack, request: GrantRequest) -> list[str]:
    """The kinds of the thread replies posted for this request (an expiry's are in its original's thread)."""
    replies = fake_slack.thread_replies(CHANNEL, request.message_ts)  # type: ignore[arg-type]
    return [_about(m).get("kind") for m in replies if _about(m).get("request_id") == request.id]  # type: ignore[misc]


def _final_posts_per_request(fake_slack: FakeSlack, requests: list) -> dict[int, int]:
    return {
        request.id: sum(kind in ("finished", "rejected") for kind in _kinds_posted(fake_slack, request))
        for request in requests
    }


def _about(message: dict) -> dict:
    """The event a message was posted for, from its metadata."""
    return (message.get("metadata") or {}).get("event_payload") or {}


def _posted_out_of_order(fake_slack: FakeSlack, requests: list) -> list[int]:
    """Requests whose thread shows the result before the 'approved' progress message."""
    wrong = []
    for request in requests:
        kinds = _kinds_posted(fake_slack, request)
        if "approved" in kinds and "finished" in kinds and kinds.index("finished") < kinds.index("approved"):
            wrong.append(request.id)
    return wrong
