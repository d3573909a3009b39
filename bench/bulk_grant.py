"""Bulk-grant benchmark: how fast the whole app grants 1,000 and 10,000 workers, and how much memory it needs.

What runs: `python app.py` as a real process in HTTP mode (a fresh SQLite database per run), talking to the
wire-level FakeSlack and FakeMTurk from tests/fakes, which run in this process. A request with all the
workers is sent as a signed slash command, and the clock runs from sending the signed Approve click to the
moment fake Slack receives the result summary in the request's thread (its message timestamp, same clock).

Scenarios, each with a fresh app process and fresh fakes per size:

  latency  MTurk answers after 50 ms and throttles above 100 calls/s (a 1 s sliding window). Reported against
           the bound min(100/s, MTURK_MAX_CONCURRENCY / 0.05 s) and against a plain sequential boto3 loop
           (200 distinct workers, another qualification type) on the same fake.
  cpu      MTurk answers at once and never throttles; the app runs with MTURK_MAX_TPS=10000 so its cap does not
           bind. Reported against a bare boto3 ThreadPoolExecutor loop with MTURK_MAX_CONCURRENCY threads
           granting the same number of (distinct) workers on the same fake.

Peak memory is VmHWM of the app process, read after each run. The baselines run in a spawned child process
so they do not share this process's GIL with the fakes (as the app does not).

Run from the repository root:

    .venv/bin/python bench/bulk_grant.py             # 1,000 and 10,000 workers, about 5-6 minutes on 2 cores
    .venv/bin/python bench/bulk_grant.py --quick     # 1,000 workers only, under a minute
    .venv/bin/python bench/bulk_grant.py --sizes 2000 --scenarios cpu --concurrency 40

It prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench._harness import (  # noqa: E402
    BASELINE_QUAL,
    Stack,
    boto3_baseline,
    in_child_process,
    poll,
    running_stack,
    slack_quiet,
)
from bot.requests import WorkerStatus  # noqa: E402
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, posted_for  # noqa: E402

LATENCY = 0.05
THROTTLE_TPS = 100
SEQUENTIAL_SAMPLE = 200


@dataclass
class Run:
    scenario: str
    workers: int
    seconds: float = float("nan")
    failed: int | None = None
    peak_rss_mb: float = float("nan")
    ratio: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.workers / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class AppGrant:
    seconds: float
    click_ack_seconds: float
    granted: int
    failed: int
    pending: int
    calls: int
    duplicates: int
    app_cpu_seconds: float
    bench_cpu_seconds: float
    idle_rss_mb: float
    summary_text: str


def worker_ids(n: int, prefix: str = "A") -> list[str]:
    """IDs as MTurk issues them (A + 13 upper-case alphanumerics), distinct per prefix."""
    return [f"{prefix}{i:0{14 - len(prefix)}d}" for i in range(n)]


def grant_through_app(stack: Stack, n: int, timeout: float, label: str) -> AppGrant:
    """Request n workers, approve, and time the click until the result summary lands in the thread."""
    ids = worker_ids(n)
    idle_rss = stack.rss_mb()
    submitted = stack.sender.command(REQUESTER, f"{QUAL} {' '.join(ids)}")
    if submitted.status != 200:
        raise RuntimeError(f"the slash command answered {submitted.status}: {submitted.body[:200]}")
    request = poll(
        lambda: (r := stack.store.get(1)) is not None and r.message_ts is not None and r,
        timeout=60 + n / 100,
        what="the approval message",
    )
    assert request and request.message_ts
    slack_quiet(stack.slack)  # the worker-list file of a big request is uploaded after the message
    thread_ts = request.message_ts

    me = psutil.Process()
    bench_cpu_before = sum(me.cpu_times()[:2])
    app_cpu_before = stack.app_cpu_seconds()
    clicked_at = time.time()
    ack = stack.sender.click(APPROVER, "approve_request", str(request.id), message_ts=thread_ts)
    click_ack = time.time() - clicked_at
    if ack.status != 200:
        raise RuntimeError(f"the Approve click answered {ack.status}: {ack.body[:200]}")

    next_report = time.monotonic() + 10

    def summary() -> dict[str, Any] | None:
        nonlocal next_report
        with stack.slack.lock:
            found = next(
                (
                    m
                    for m in stack.slack.messages
                    if m["channel"] == CHANNEL and m["thread_ts"] == thread_ts and posted_for(m) == "finished"
                ),
                None,
            )
        if found is None and time.monotonic() >= next_report:
            next_report += 10
            done = sum(1 for g in stack.mturk.grants if g.qualification_type_id == QUAL)
            print(f"    … {label}: {time.time() - clicked_at:5.0f} s, {done} of {n} granted at MTurk", flush=True)
        return found

    posted = poll(summary, timeout=timeout, interval=0.05, what="the result summary in the thread")
    seconds = float(posted["ts"]) - clicked_at
    app_cpu = stack.app_cpu_seconds() - app_cpu_before
    bench_cpu = sum(me.cpu_times()[:2]) - bench_cpu_before

    outcomes = stack.store.outcomes(request.id)
    by_status = {status: sum(1 for o in outcomes if o.status is status) for status in WorkerStatus}
    with stack.mturk.lock:
        calls = sum(1 for name, p in stack.mturk.requests if name == "AssociateQualificationWithWorker" and _app(p))
        granted_ids = [g.worker_id for g in stack.mturk.grants if g.qualification_type_id == QUAL]
    duplicates = len(granted_ids) - len(set(granted_ids))
    # The results file and the DM come after the summary: let them finish, so the peak includes them.
    slack_quiet(stack.slack, quiet_for=1.0, timeout=60)
    return AppGrant(
        seconds=seconds,
        click_ack_seconds=click_ack,
        granted=by_status[WorkerStatus.GRANTED],
        failed=by_status[WorkerStatus.FAILED],
        pending=by_status[WorkerStatus.PENDING],
        calls=calls,
        duplicates=duplicates,
        app_cpu_seconds=app_cpu,
        bench_cpu_seconds=bench_cpu,
        idle_rss_mb=idle_rss,
        summary_text=str(posted.get("text") or "").splitlines()[0][:160],
    )


def _app(params: dict[str, Any]) -> bool:
    return params.get("QualificationTypeId") == QUAL


def app_settings(concurrency: int, lease_seconds: int | None, **extra: str) -> dict[str, str]:
    settings = {"MTURK_MAX_CONCURRENCY": str(concurrency), **extra}
    if lease_seconds is not None:
        settings["GRANT_LEASE_SECONDS"] = str(lease_seconds)
    return settings


def describe_app_grant(run: Run, grant: AppGrant) -> None:
    run.notes += [
        f"click acked in {grant.click_ack_seconds * 1000:.0f} ms; summary posted {grant.seconds:.2f} s after the click",
        f"outcomes in the DB: {grant.granted} granted, {grant.failed} failed, {grant.pending} pending; "
        f"AssociateQualificationWithWorker attempts {grant.calls}, duplicate grants {grant.duplicates}",
        f"app process CPU {grant.app_cpu_seconds:.1f} s ({grant.app_cpu_seconds / run.workers * 1000:.2f} ms/worker); "
        f"bench process (fakes) CPU {grant.bench_cpu_seconds:.1f} s; app RSS before the request "
        f"{grant.idle_rss_mb:.0f} MB",
        f"summary: {grant.summary_text}",
    ]


def latency_bound(n: int, concurrency: int, lease_seconds: int | None) -> Run:
    run = Run("latency-bound", n)
    bound = min(THROTTLE_TPS, concurrency / LATENCY)
    with running_stack("latency", **app_settings(concurrency, lease_seconds)) as stack:
        stack.mturk.latency = LATENCY
        stack.mturk.throttle_above_tps = THROTTLE_TPS
        sample = worker_ids(SEQUENTIAL_SAMPLE, "A9SEQ")
        sequential = in_child_process(boto3_baseline, stack.mturk.url, BASELINE_QUAL, sample, 1)
        sequential_rate = SEQUENTIAL_SAMPLE / sequential["seconds"]
        time.sleep(1.1)  # let the fake's one-second throttle window forget the baseline's calls
        throttles_before = stack.mturk.injected_faults["ThrottlingException"]
        try:
            grant = grant_through_app(stack, n, timeout=90 + 4 * n / bound, label=f"latency-bound {n}")
        finally:
            run.peak_rss_mb = stack.peak_rss_mb()
        throttles = stack.mturk.injected_faults["ThrottlingException"] - throttles_before
    run.seconds, run.failed = grant.seconds, grant.failed
    run.ratio = f"{run.rate / bound:.2f} of bound ({bound:.0f}/s); {run.rate / sequential_rate:.1f}× sequential boto3"
    describe_app_grant(run, grant)
    run.notes += [
        f"bound = min({THROTTLE_TPS}/s throttle, {concurrency} in flight / {LATENCY} s) = {bound:.0f} workers/s; "
        f"app {run.rate:.1f}/s = {run.rate / bound:.2f} of it",
        f"throttles injected by fake MTurk during the app's run: {throttles}",
        f"sequential boto3 loop, {SEQUENTIAL_SAMPLE} workers: {sequential['seconds']:.2f} s = {sequential_rate:.1f}/s "
        f"({sequential['errors']} errors); app speed-up {run.rate / sequential_rate:.1f}×",
    ]
    return run


def cpu_bound(n: int, concurrency: int, lease_seconds: int | None) -> Run:
    run = Run("cpu-bound", n)
    settings = app_settings(concurrency, lease_seconds, MTURK_MAX_TPS="10000")
    with running_stack("cpu", **settings) as stack:
        stack.mturk.latency = 0.0
        stack.mturk.throttle_above_tps = None
        ids = worker_ids(n, "A9POOL")
        bare = in_child_process(boto3_baseline, stack.mturk.url, BASELINE_QUAL, ids, concurrency)
        bare_rate = n / bare["seconds"]
        time.sleep(0.5)
        try:
            grant = grant_through_app(stack, n, timeout=120 + n / 20, label=f"cpu-bound {n}")
        finally:
            run.peak_rss_mb = stack.peak_rss_mb()
    run.seconds, run.failed = grant.seconds, grant.failed
    run.ratio = f"{run.rate / bare_rate:.2f}× bare boto3 pool ({concurrency} threads)"
    describe_app_grant(run, grant)
    run.notes += [
        "app started with MTURK_MAX_TPS=10000, so its configured rate cap does not bind",
        f"bare boto3 ThreadPoolExecutor({concurrency}), {n} distinct workers: {bare['seconds']:.2f} s = "
        f"{bare_rate:.0f}/s ({bare['errors']} errors{'; first: ' + bare['first_error'] if bare['errors'] else ''})",
        f"app {run.rate:.0f}/s = {run.rate / bare_rate:.2f}× the bare loop",
    ]
    return run


def print_run(run: Run) -> None:
    if run.error:
        print(f"  {run.scenario}, {run.workers} workers: FAILED TO COMPLETE: {run.error}")
    else:
        print(
            f"  {run.scenario}, {run.workers} workers: {run.seconds:.2f} s, {run.rate:.1f} workers/s, "
            f"{run.failed} failed, peak RSS {run.peak_rss_mb:.0f} MB"
        )
    for note in run.notes:
        print(f"    - {note}")
    print(flush=True)


def markdown_table(runs: list[Run]) -> str:
    lines = [
        "| Scenario | Workers | Seconds | Workers/s | Ratio (to bound, or to bare boto3) | Failed | Peak RSS MB |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for run in runs:
        if run.error:
            lines.append(f"| {run.scenario} | {run.workers:,} | — | — | did not complete | — | — |")
            continue
        lines.append(
            f"| {run.scenario} | {run.workers:,} | {run.seconds:.1f} | {run.rate:.0f} | {run.ratio} | "
            f"{run.failed} | {run.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated worker counts (default 1000,10000)")
    parser.add_argument("--quick", action="store_true", help="1,000 workers only")
    parser.add_argument("--concurrency", type=int, default=20, help="MTURK_MAX_CONCURRENCY of the app (default 20)")
    parser.add_argument("--lease-seconds", type=int, default=None, help="GRANT_LEASE_SECONDS (default: the app's)")
    parser.add_argument("--scenarios", default="latency,cpu", help="comma-separated: latency, cpu (default both)")
    args = parser.parse_args()
    sizes = [1000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"latency", "cpu"}
    if unknown or not sizes or any(n < 1 or n > 10_000 for n in sizes):
        parser.error("scenarios are latency and cpu; sizes are 1..10,000 (the app's MAX_WORKERS_PER_REQUEST)")

    print(
        f"grant-qual bulk grant benchmark — {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.2f} at start (other processes on the machine skew the figures)"
    )
    lease = args.lease_seconds if args.lease_seconds is not None else "default"
    print(
        f"MTURK_MAX_CONCURRENCY={args.concurrency}, GRANT_LEASE_SECONDS={lease}, sizes {sizes}, "
        f"scenarios {scenarios}\n",
        flush=True,
    )
    runs: list[Run] = []
    started = time.monotonic()
    for scenario in scenarios:
        for n in sizes:
            print(f"{scenario}-bound, {n} workers …", flush=True)
            try:
                run = (latency_bound if scenario == "latency" else cpu_bound)(n, args.concurrency, args.lease_seconds)
            except Exception as error:
                run = Run(f"{scenario}-bound", n, error=f"{type(error).__name__}: {error}")
            runs.append(run)
            print_run(run)

    print(f"Total benchmark time {time.monotonic() - started:.0f} s.\n")
    print(markdown_table(runs))
    print(
        "\nNotes:\n"
        f"- Everything runs on this machine ({os.cpu_count()} CPU(s)): the app process, and in the bench process "
        "the fake Slack and fake MTurk (Python ThreadingHTTPServers, a thread per connection, SigV4 verified on "
        "every call). They share the cores; the CPU lines above show how much each used. The app is one Python "
        "process (one GIL), so it uses at most about one core. These are relative figures, not MTurk's.\n"
        "- Seconds run from sending the Approve click to fake Slack's timestamp of the summary post: they include "
        "the click's ack, the claim, every MTurk call, the per-batch database writes, the request-message update "
        "and the progress message, but not the results file or the DM that follow the summary.\n"
        f"- Latency-bound: the fake sleeps {LATENCY} s per grant and answers ThrottlingException above "
        f"{THROTTLE_TPS} calls in any trailing second; the app's adaptive limiter has to find that rate (it starts at "
        "MTURK_MAX_TPS, default 200), so some throttles are expected. Real MTurk publishes no limit.\n"
        "- The baselines (sequential loop; bare thread pool) use boto3 with default settings (pool size raised to "
        "the thread count) in a spawned child process; they record nothing and post nothing, the app does both.\n"
        "- Peak RSS is VmHWM of the app process, which is fresh for every row; it includes the interpreter and "
        "libraries (see 'app RSS before the request' above)."
    )
    return 0 if not any(run.error for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
