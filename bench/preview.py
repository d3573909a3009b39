"""How long posting a 10,000-worker request takes with the preview (the app reads each worker's current
score before the approval message is posted), against fake MTurk answering after 50 ms and throttling above
100 calls/s, reads included.

The type has 20,000 holders (more than the request's workers): listing them costs 200 pages of 100, far fewer
than 10,000 per-worker reads, so the app lists them. Of the 10,000 workers, 2,000 hold 50 (changed), 500 hold
the requested 80 already (unchanged, not called) and the rest are new.

    .venv/bin/python bench/preview.py [--workers 10000] [--holders 20000]

Runs the app as a real `python app.py` process (bench/_harness.py); takes about a minute.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import poll, running_stack
from tests.conftest import QUAL, REQUESTER

LATENCY = 0.05
THROTTLE_TPS = 100
READS = ("GetQualificationScore", "ListWorkersWithQualificationType")


def worker_ids(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:0{14 - len(prefix)}d}" for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--holders", type=int, default=20_000)
    args = parser.parse_args()
    workers = worker_ids(args.workers, "A")
    changed, unchanged = workers[: args.workers // 5], workers[args.workers // 5 : args.workers // 5 + 500]
    others = max(args.holders - len(changed) - len(unchanged), 0)
    with running_stack("preview") as stack:
        mturk = stack.mturk
        for worker in worker_ids(others, "A9H"):
            mturk.preset_grant(QUAL, worker, 1)
        for worker in changed:
            mturk.preset_grant(QUAL, worker, 50)
        for worker in unchanged:
            mturk.preset_grant(QUAL, worker, 80)
        mturk.latency = LATENCY
        mturk.throttle_above_tps = THROTTLE_TPS
        mturk.throttle_reads = True
        started = time.time()
        answer = stack.sender.command(REQUESTER, f"{QUAL} {' '.join(workers)} value=80")
        if answer.status != 200:
            raise RuntimeError(f"the slash command answered {answer.status}: {answer.body[:200]}")
        request = poll(
            lambda: (r := stack.store.get(1)) is not None and r.message_ts is not None and r,
            timeout=600,
            what="the approval message",
        )
        posted = time.time()
        assert request and request.message_ts
        with mturk.lock:
            calls = {op: sum(1 for name, _ in mturk.requests if name == op) for op in READS}
        throttles = mturk.injected_faults["ThrottlingException"]
        summary = stack.store.preview_summary(1)
    print(f"workers in the request: {args.workers:,}; holders of the type: {args.holders:,}")
    print(f"fake MTurk: {LATENCY * 1000:.0f} ms latency, throttles above {THROTTLE_TPS} calls/s (reads included)")
    print(f"command to approval message posted: {posted - started:.1f} s")
    print(", ".join(f"{op} calls: {n:,}" for op, n in calls.items()) + f"; throttled: {throttles}")
    if summary:
        print("change: " + ", ".join(f"{kind.value} {n:,}" for kind, n in summary.counts.items() if n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
