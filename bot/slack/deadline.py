"""Work a listener must finish before it answers Slack, waited for only as long as Slack's window allows.

Slack drops an interaction not answered within 3 seconds (Bolt then answers 404 and the person sees an
error, though the work may still complete). So the work runs on a thread of its own and the listener waits
for it up to a deadline, well inside the window: in time, it answers as it always did; late, it answers
at once with something that says the work goes on, and the work's outcome is delivered when it is done.

A small pool of its own, not the after-ack pool: a submission must not queue behind long previews there.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

# What is left of Slack's 3 seconds after the request's way in and the answer's way out, with some margin.
ACK_DEADLINE_SECONDS = 2.0
DEADLINE_THREADS = 4


class AckDeadline:
    """Runs work before an ack and says whether it finished in time. `seconds` may be changed while running
    (tests set 0: every wait is late, with no clock involved)."""

    def __init__(self, seconds: float = ACK_DEADLINE_SECONDS, threads: int = DEADLINE_THREADS) -> None:
        self.seconds = seconds
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="before-ack")

    def start(self, work: Callable[[], T]) -> Future[T]:
        return self._pool.submit(work)

    def in_time(self, future: Future[T]) -> bool:
        """Wait for `future` up to the deadline; whether it is done (a failure counts as done)."""
        if self.seconds <= 0:
            return False
        done, _ = wait([future], timeout=self.seconds)
        return bool(done)

    def shutdown(self) -> None:
        """Let work already started finish: its outcome is someone's answer."""
        self._pool.shutdown(wait=True)
