"""Soak: two replicas on PostgreSQL, faults everywhere, double clicks, retries, a replica killed and restarted.

Bounded (a few hundred requests, well under the CI budget); prints what it did and checks the invariants:
every approved worker granted exactly once, every request final with exactly one final thread post,
nothing granted that was not approved.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.requests import DeliveryState, EventKind, RequestState
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

REQUESTS = 240
SEED = 20261129
REJECT_FORM = "reject_request_modal"


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

    def __init__(self, replicas: list[AppProcess], fake_slack: FakeSlack) -> None:
        self.replicas = replicas
        self.fake_slack = fake_slack
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


def test_soak_two_replicas_with_faults_and_a_crash(
    replicas: list[AppProcess], fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str
) -> None:
    fake_mturk.random_faults = {"ServiceFault": 0.04, "ThrottlingException": 0.04}
    fake_mturk.random_slow = (0.02, 0.5)
    fake_slack.random_faults = {429: 0.03, 503: 0.03, "drop": 0.02}
    store = GrantStore(create_database_engine(postgres_url))
    driver = Driver(replicas, fake_slack)
    workers_of = {i: [f"A{i:05d}{j:06d}" for j in range(1 + i % 5)] for i in range(REQUESTS)}

    def submit(i: int) -> None:
        driver.send("command", REQUESTER, f"{QUAL} {' '.join(workers_of[i])} reason=soak-{i}")

    started = time.monotonic()
    _in_parallel(submit, range(REQUESTS))
    posted = fake_slack.wait_for(lambda: _all_posted(store), timeout=120)
    all_posted_after = time.monotonic() - started

    decisions = {request.id: driver.random.random() < 0.75 for request in posted}

    def decide(request_id: int) -> None:
        ts = store.get(request_id).message_ts  # type: ignore[union-attr]
        action = "approve_request" if decisions[request_id] else "reject_request"
        for click in range(driver.random.choice([1, 1, 2, 3])):  # double clicks, two approvers, Slack retries
            approver = driver.random.choice([APPROVER, APPROVER_2])
            retry = click if driver.random.random() < 0.3 else None
            driver.send("click", approver, action, str(request_id), message_ts=ts, retry_num=retry)
            if action == "reject_request":  # the form Reject opens, submitted with a reason
                metadata = json.dumps({"request_id": request_id, "channel_id": CHANNEL, "message_ts": ts})
                values = reject_reason_values(f"soak-{request_id}")
                driver.send("submit_view", approver, values, private_metadata=metadata, callback_id=REJECT_FORM)

    killer = threading.Thread(target=_kill_and_restart, args=(replicas[0], driver, fake_mturk))
    killer.start()
    _in_parallel(decide, list(decisions))
    all_clicked_after = time.monotonic() - started
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
    grants = fake_mturk.grant_counts()
    approved_workers = {
        w.worker_id
        for r in requests
        if r.state in (RequestState.DONE, RequestState.FAILED)
        for w in store.outcomes(r.id)
    }
    rejected_workers = {w.worker_id for r in requests if r.state is RequestState.REJECTED for w in store.outcomes(r.id)}
    duplicates = sum(n - 1 for n in grants.values() if n > 1)
    lost = len([w for w in approved_workers if grants[w] == 0])
    final_posts = _final_posts_per_request(fake_slack, requests)
    rejected = len([r for r in requests if r.state is RequestState.REJECTED])
    print(
        f"\nsoak: requests {len(requests)}, approved {len(requests) - rejected}, rejected {rejected}, "
        f"MTurk faults injected {dict(fake_mturk.injected_faults)}, Slack faults injected "
        f"{dict(fake_slack.injected_faults)}, deliveries {dict(driver.sent)}, grants {grants.total()}, "
        f"duplicates: {duplicates}, lost: {lost}; all posted after {all_posted_after:.0f} s, all clicked after "
        f"{all_clicked_after:.0f} s, all final and told after {all_told_after:.0f} s"
    )
    assert all(r.state.is_final for r in requests)
    assert {r.state for r in requests if decisions.get(r.id)} <= {RequestState.DONE}
    assert duplicates == 0 and lost == 0
    assert set(grants) == approved_workers  # nothing granted that was not approved
    assert not rejected_workers & set(grants)
    assert all(count == 1 for count in final_posts.values()), final_posts
    assert len(final_posts) == len(requests)
    assert not _posted_out_of_order(fake_slack, requests)
    dms = Counter(_about(dm).get("request_id") for dm in fake_slack.dms_to(REQUESTER))
    assert dms == {r.id: 1 for r in requests}, "each request's requester gets exactly one DM"


def _in_parallel(work: object, items: object, threads: int = 8) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, item) for item in items]:  # type: ignore[arg-type, attr-defined]
            future.result()


def _kill_and_restart(replica: AppProcess, driver: Driver, fake_mturk: FakeMTurk) -> None:
    deadline = time.monotonic() + 60
    while fake_mturk.grant_counts().total() < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    with driver.lock:
        replica.kill()
    time.sleep(1.0)
    replica.start()


def _all_posted(store: GrantStore) -> list:
    requests = store.requests()
    return requests if len(requests) >= REQUESTS and all(r.message_ts for r in requests) else []


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


def _final_posts_per_request(fake_slack: FakeSlack, requests: list) -> dict[int, int]:
    counts: dict[int, int] = {}
    for request in requests:
        replies = fake_slack.thread_replies(CHANNEL, request.message_ts)
        kinds = [_about(m).get("kind") for m in replies]
        counts[request.id] = sum(kind in ("finished", "rejected") for kind in kinds)
    return counts


def _about(message: dict) -> dict:
    """The event a message was posted for, from its metadata."""
    return (message.get("metadata") or {}).get("event_payload") or {}


def _posted_out_of_order(fake_slack: FakeSlack, requests: list) -> list[int]:
    """Requests whose thread shows the result before the 'approved' progress message."""
    wrong = []
    for request in requests:
        replies = fake_slack.thread_replies(CHANNEL, request.message_ts)
        kinds = [_about(m).get("kind") for m in replies]
        if "approved" in kinds and "finished" in kinds and kinds.index("finished") < kinds.index("approved"):
            wrong.append(request.id)
    return wrong
