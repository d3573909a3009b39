"""Fairness benchmark: a small request approved while big ones run, and the big ones against MTurk's bound.

What runs: `python app.py` as a real process in HTTP mode (a fresh SQLite database), talking to the
wire-level FakeSlack and FakeMTurk from tests/fakes, which run in this process. MTurk answers after 50 ms
and throttles above 50 calls in any trailing second; the app is not told the limit (its limiter finds it)
and runs with MTURK_MAX_CONCURRENCY=20.

Scenario: five 200-worker grant requests and one 3-worker request are posted (previews done beforehand).
The five are approved; once 200 of their workers are granted, the small one is approved. Printed:

  - the small request's latency: from its Approve click to its result summary in the thread (fake Slack's
    message timestamp, same clock), and whether the big ones were all still granting then;
  - the big ones' total: from the first Approve click to the last of their summaries, against the bound
    (all 1,003 calls at 50 per second);
  - chat.update calls during the run, progress apart (Slack's Tier 3: about 50 a minute per workspace).

Run from the repository root:

    .venv/bin/python bench/fairness.py      # about half a minute

It prints figures only; nothing is asserted.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import Stack, poll, running_stack, slack_quiet  # noqa: E402
from bot.requests import RequestState  # noqa: E402
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, posted_for  # noqa: E402

LATENCY = 0.05
THROTTLE_TPS = 50
BIG, BIG_WORKERS, SMALL_WORKERS = 5, 200, 3
SMALL_ID = BIG + 1


def worker_ids(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:0{14 - len(prefix)}d}" for i in range(n)]


def post_request(stack: Stack, request_id: int, ids: list[str]) -> str:
    answer = stack.sender.command(REQUESTER, f"{QUAL} {' '.join(ids)}")
    if answer.status != 200:
        raise RuntimeError(f"the slash command answered {answer.status}: {answer.body[:200]}")
    request = poll(
        lambda: (r := stack.store.get(request_id)) is not None and r.message_ts is not None and r,
        timeout=60,
        what=f"request #{request_id}'s approval message",
    )
    assert request and request.message_ts
    return request.message_ts


def approve(stack: Stack, request_id: int, message_ts: str) -> float:
    clicked_at = time.time()
    ack = stack.sender.click(APPROVER, "approve_request", str(request_id), message_ts=message_ts)
    if ack.status != 200:
        raise RuntimeError(f"the Approve click answered {ack.status}: {ack.body[:200]}")
    return clicked_at


def summary(stack: Stack, thread_ts: str) -> dict[str, Any] | None:
    with stack.slack.lock:
        return next(
            (
                m
                for m in stack.slack.messages
                if m["channel"] == CHANNEL and m["thread_ts"] == thread_ts and posted_for(m) == "finished"
            ),
            None,
        )


def granted_at_mturk(stack: Stack) -> int:
    with stack.mturk.lock:
        return sum(1 for g in stack.mturk.grants if g.qualification_type_id == QUAL)


@dataclass
class Fairness:
    """What one fairness run measured."""

    small_latency: float  # seconds from the small request's Approve click to its result summary
    still_granting: int  # big requests still granting when the small one's summary was posted
    granted_then: int  # big requests' workers granted by then
    total: float  # seconds from the first big Approve click to the last big summary
    bound: float  # seconds all the calls take at MTurk's limit
    updates: int  # chat.update calls during the run
    progress: int  # of which live progress
    throttles: int
    duplicates: int
    granted: int

    @property
    def total_over_bound(self) -> float:
        return self.total / self.bound


def run_fairness() -> Fairness:
    """One run of the scenario: five big requests approved, then the small one while they run."""
    bound = (BIG * BIG_WORKERS + SMALL_WORKERS) / THROTTLE_TPS
    with running_stack("fairness", MTURK_MAX_CONCURRENCY="20") as stack:
        threads = {
            request_id: post_request(stack, request_id, worker_ids(BIG_WORKERS, f"A{request_id}B"))
            for request_id in range(1, BIG + 1)
        }
        threads[SMALL_ID] = post_request(stack, SMALL_ID, worker_ids(SMALL_WORKERS, "A9S"))
        slack_quiet(stack.slack)
        stack.mturk.latency = LATENCY
        stack.mturk.throttle_above_tps = THROTTLE_TPS
        updates_before = len(stack.slack.calls_to("chat.update"))

        started = min(approve(stack, request_id, threads[request_id]) for request_id in range(1, BIG + 1))
        poll(lambda: granted_at_mturk(stack) >= 200, timeout=120, what="200 grants of the big requests")
        small_clicked = approve(stack, SMALL_ID, threads[SMALL_ID])
        small_post = poll(lambda: summary(stack, threads[SMALL_ID]), timeout=120, what="the small request's result")
        small_latency = float(small_post["ts"]) - small_clicked
        still_granting = sum(
            1 for request_id in range(1, BIG + 1) if stack.store.get(request_id).state is RequestState.GRANTING
        )
        granted_then = granted_at_mturk(stack)

        posts = [
            poll(lambda ts=threads[i]: summary(stack, ts), timeout=300, what=f"request #{i}'s result")
            for i in range(1, BIG + 1)
        ]
        total = max(float(p["ts"]) for p in posts) - started
        update_calls = stack.slack.calls_to("chat.update")[updates_before:]
        # Live progress shows the rate ("… 97/s"); the final counts and status lines do not.
        progress = sum(1 for c in update_calls if str(c.args.get("text") or "").endswith("/s"))
        throttles = stack.mturk.injected_faults["ThrottlingException"]
        with stack.mturk.lock:
            granted_ids = [g.worker_id for g in stack.mturk.grants if g.qualification_type_id == QUAL]
    return Fairness(
        small_latency=small_latency,
        still_granting=still_granting,
        granted_then=granted_then,
        total=total,
        bound=bound,
        updates=len(update_calls),
        progress=progress,
        throttles=throttles,
        duplicates=len(granted_ids) - len(set(granted_ids)),
        granted=len(set(granted_ids)),
    )


def main() -> None:
    r = run_fairness()
    print(f"Fairness: {BIG} × {BIG_WORKERS}-worker grants, then a {SMALL_WORKERS}-worker one approved while they run")
    print(f"  fake MTurk: {LATENCY * 1000:.0f} ms a call, throttles above {THROTTLE_TPS} calls/s; app not told")
    print(
        f"  small request: result posted {r.small_latency:.2f} s after its Approve click; "
        f"{r.still_granting} of {BIG} big requests still granting then ({r.granted_then} of {BIG * BIG_WORKERS} "
        "granted)"
    )
    print(
        f"  big requests: all {BIG} results posted {r.total:.1f} s after the first click; bound {r.bound:.2f} s "
        f"({BIG * BIG_WORKERS + SMALL_WORKERS} calls / {THROTTLE_TPS} per s) = {r.bound / r.total:.2f} of bound"
    )
    print(
        f"  chat.update: {r.updates} calls in {r.total:.0f} s, {r.progress} of them progress "
        f"({r.progress / r.total * 60:.0f} a minute), the rest the six requests' status lines and last words"
    )
    print(f"  throttles injected {r.throttles}; duplicate grants {r.duplicates}; granted {r.granted}")


if __name__ == "__main__":
    main()
