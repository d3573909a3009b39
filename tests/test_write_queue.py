"""Pure logic: SQLite's writers queue in the process, and a write Slack is waiting on goes first."""

from __future__ import annotations

import threading
import time

from bot.store import _WriterQueue


def test_one_writer_at_a_time_and_an_urgent_one_overtakes_those_already_waiting() -> None:
    queue = _WriterQueue()
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
