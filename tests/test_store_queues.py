"""The store's two queues: SQLite's writers (a write Slack is waiting on goes first) and the Slack outbox
(each request's events in order, different requests side by side)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from bot.requests import GrantSpec, WorkerTarget
from bot.store import GrantStore, create_database_engine
from bot.turns import TurnQueue


def test_one_writer_at_a_time_and_an_urgent_one_overtakes_those_already_waiting() -> None:
    queue = TurnQueue()
    order: list[str] = []
    inside = 0
    most_inside = 0
    lock = threading.Lock()

    def write(name: str, urgent: bool) -> None:
        nonlocal inside, most_inside
        with queue.turn(urgent=urgent):
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
                order.append(name)
            time.sleep(0.01)
            with lock:
                inside -= 1

    def waiting() -> int:
        return len(queue._urgent) + len(queue._others)

    with queue.turn(urgent=False):  # a background write in progress
        threads = []
        for name, urgent in [("outcomes", False), ("delivery", False), ("click", True)]:
            thread = threading.Thread(target=write, args=(name, urgent))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 5
            while waiting() < len(threads) and time.monotonic() < deadline:
                time.sleep(0.001)
    for thread in threads:
        thread.join(5)
    assert order == ["click", "outcomes", "delivery"]
    assert most_inside == 1
    assert not queue._busy


def test_the_outbox_hands_out_only_each_requests_oldest_undelivered_event(database_url: str) -> None:
    store = GrantStore(create_database_engine(database_url))
    store.upgrade_schema()
    spec = GrantSpec("3QUAL0000000000000001", (WorkerTarget("A1WORKER00001", None),), True, "order")
    first = store.create_request(spec, requester_id="U0REQ", mturk_env="sandbox", qualification_name="Q")
    second = store.create_request(spec, requester_id="U0REQ", mturk_env="sandbox", qualification_name="Q")
    store.decide(first.id, user_id="U0APPROVE", approve=True)
    store.decide(second.id, user_id="U0APPROVE", approve=False)
    submitted_1, approved_1 = (e.id for e in store.events(first.id))
    submitted_2, rejected_2 = (e.id for e in store.events(second.id))

    assert store.due_event_ids() == [submitted_1, submitted_2]
    store.event_delivered(submitted_1)
    store.event_retry_later(submitted_2, "ratelimited", timedelta(minutes=1))
    # The second request's post waits for its retry, and its rejection waits behind it.
    assert store.due_event_ids() == [approved_1]
    store.event_failed(submitted_2, "channel_not_found")  # given up: no longer holds the next one back
    assert store.due_event_ids() == [approved_1, rejected_2]
