"""MTurk budget benchmark: a remembered against a cold rate limit, and two replicas against one.

What runs: `python app.py` processes in HTTP mode against the wire-level FakeSlack and FakeMTurk (in this
process). Fake MTurk answers each grant after 100 ms and throttles above 50 calls in any trailing second,
the approval's reads of the type's holders included (MTurk's limit is the account's, and the app paces
its reads with its grants; `--grants-only-limit` counts grants alone, as before issue 12's last stop);
the app is not told the limit. The clock runs from the Approve click(s) to the last result summary in
the thread(s) (fake Slack's timestamps, same clock).

  remembered  One app on SQLite grants 150 workers with nothing known (cold); it is restarted and grants 150
              others, starting from the ceiling the first grant stored. The bound is 150 / 50/s = 3 s.
  replicas    Two 150-worker requests approved at once, on PostgreSQL (a fresh schema per run): granted by
              two replicas (each takes one click) against one replica taking both. The bound is 300 / 50/s =
              6 s. Twice: with nothing known, and after a first (untimed) request has taught the limit.
              Needs --postgres URL or TEST_DATABASE_URL.

Run from the repository root:

    .venv/bin/python bench/budget.py                          # both scenarios, 3 runs each, about 2 minutes
    .venv/bin/python bench/budget.py --runs 1 --scenarios remembered

It prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench._harness import poll, slack_quiet, use_fake_aws_credentials  # noqa: E402
from bot.budget import SqlBudgetStore  # noqa: E402
from bot.store import GrantStore, create_database_engine  # noqa: E402
from tests.app_process import AppProcess  # noqa: E402
from tests.conftest import (  # noqa: E402
    APPROVER,
    BOT_TOKEN,
    CHANNEL,
    QUAL,
    QUAL_NAME,
    REQUESTER,
    SIGNING_SECRET,
    app_environment,
    posted_for,
)
from tests.fakes import FakeMTurk, FakeSlack  # noqa: E402
from tests.slack_sender import SlackSender  # noqa: E402

LATENCY = 0.1
LIMIT = 50
WORKERS = 150
SETTINGS = {"MTURK_MAX_CONCURRENCY": "20"}


@dataclass
class Result:
    seconds: float
    throttles: int
    calls: int
    granting_seconds: float  # from the first grant MTurk accepted to the last
    first_grant_after: float  # seconds from the click(s) to the first grant MTurk accepted
    ceiling: float | None  # the ceiling in the database afterwards
    throttled_at: list[float]  # seconds after the click(s) of each throttled call
    holder_pages: int  # pages of the type's holders the approval read before its first grant (one after another)

    @property
    def throttled_share(self) -> float:
        return self.throttles / self.calls if self.calls else float("nan")

    def __str__(self) -> str:
        ceiling = f"{self.ceiling:.0f}/s" if self.ceiling is not None else "none"
        return (
            f"{self.seconds:.2f} s click to summary (first grant after {self.first_grant_after:.2f} s, grants over "
            f"{self.granting_seconds:.2f} s), {self.throttles} of {self.calls} calls throttled "
            f"(at {', '.join(f'{t:.2f}' for t in self.throttled_at)} s); stored {ceiling}"
        )


@dataclass
class Replica:
    process: AppProcess
    sender: SlackSender


class Bench:
    """Fresh fakes; app processes on one database; requests sent and timed as Slack and MTurk see them."""

    def __init__(self, slack: FakeSlack, mturk: FakeMTurk, database_url: str, workdir: Path) -> None:
        self.slack, self.mturk, self.database_url, self.workdir = slack, mturk, database_url, workdir
        self.store = GrantStore(create_database_engine(database_url))
        self.replicas: list[Replica] = []

    def start_replica(self) -> Replica:
        env = app_environment(self.slack, self.mturk, self.database_url, **SETTINGS)
        process = AppProcess(env, self.workdir, name=f"app-{len(self.replicas)}").start()
        replica = Replica(process, SlackSender(process.events_url, SIGNING_SECRET, self.slack.response_url("")))
        self.replicas.append(replica)
        return replica

    def stop(self) -> None:
        for replica in self.replicas:
            try:
                if replica.process.process is not None and replica.process.process.poll() is None:
                    replica.process.terminate(timeout=30)
            except Exception:
                replica.process.stop()
        self.store.engine.dispose()

    def submit(self, replica: Replica, prefix: str) -> tuple[int, str]:
        """A request for WORKERS new workers; returns its ID and approval message's ts once posted."""
        before = {r.id for r in self.store.requests()}
        ids = [f"{prefix}{i:0{14 - len(prefix)}d}" for i in range(WORKERS)]
        response = replica.sender.command(REQUESTER, f"{QUAL} {' '.join(ids)}")
        if response.status != 200:
            raise RuntimeError(f"the slash command answered {response.status}: {response.body[:200]}")

        def posted() -> tuple[int, str] | None:
            new = [r for r in self.store.requests() if r.id not in before and r.message_ts]
            return (new[0].id, str(new[0].message_ts)) if new else None

        found = poll(posted, timeout=60, what="the approval message")
        assert found
        return found

    def approve_together(self, approvals: list[tuple[Replica, int, str]]) -> Result:
        """Click Approve on each (replica, request) at once; time until every summary is in its thread."""
        slack_quiet(self.slack)
        time.sleep(1.1)  # the fake's one-second window forgets the previews' reads
        throttles_before = self.mturk.injected_faults["ThrottlingException"]
        throttled_before = len(self.mturk.throttled_at)
        calls_before = len(self.mturk.calls("AssociateQualificationWithWorker"))
        listings_before = len(self.mturk.calls("ListWorkersWithQualificationType"))
        grants_before = len(self.mturk.grants)
        clicked_at = time.time()
        for replica, request_id, message_ts in approvals:
            ack = replica.sender.click(APPROVER, "approve_request", str(request_id), message_ts=message_ts)
            if ack.status != 200:
                raise RuntimeError(f"the Approve click answered {ack.status}: {ack.body[:200]}")
        threads = {message_ts for _, _, message_ts in approvals}

        def summaries() -> list[float] | None:
            with self.slack.lock:
                done = [
                    float(m["ts"])
                    for m in self.slack.messages
                    if m["channel"] == CHANNEL and m["thread_ts"] in threads and posted_for(m) == "finished"
                ]
            return done if len(done) == len(threads) else None

        finished = poll(summaries, timeout=120, what="the result summaries")
        assert finished
        with self.mturk.lock:
            granted_at = [g.granted_at for g in self.mturk.grants[grants_before:]]
            throttled_at = [t - clicked_at for t in self.mturk.throttled_at[throttled_before:]]
        learned = SqlBudgetStore(self.store.engine).learned("sandbox")
        return Result(
            seconds=max(finished) - clicked_at,
            throttles=self.mturk.injected_faults["ThrottlingException"] - throttles_before,
            calls=len(self.mturk.calls("AssociateQualificationWithWorker")) - calls_before,
            granting_seconds=max(granted_at) - min(granted_at),
            first_grant_after=min(granted_at) - clicked_at,
            ceiling=learned.rate if learned else None,
            throttled_at=throttled_at,
            holder_pages=sum(
                params.get("Status") == "Granted"
                for params in self.mturk.calls("ListWorkersWithQualificationType")[listings_before:]
            )
            // len(approvals),
        )


@contextmanager
def bench_on(database_url: str | None, name: str, *, grants_only_limit: bool = False) -> Iterator[Bench]:
    """Fresh fakes and a fresh database (SQLite in a scratch directory, or a fresh PostgreSQL schema)."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"grant-qual-bench-{name}-")))
        use_fake_aws_credentials(workdir)
        slack = stack.enter_context(FakeSlack(bot_token=BOT_TOKEN))
        mturk = stack.enter_context(FakeMTurk())
        mturk.add_type(QUAL, QUAL_NAME)
        mturk.latency = LATENCY
        mturk.throttle_above_tps = LIMIT
        mturk.throttle_reads = not grants_only_limit
        sqlite = f"sqlite:///{workdir / 'grant-qual.db'}"
        url = sqlite if database_url is None else stack.enter_context(schema(database_url))
        bench = Bench(slack, mturk, url, workdir)
        try:
            yield bench
        finally:
            bench.stop()


@contextmanager
def schema(base: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    engine = create_database_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


def cold_then_remembered(*, grants_only_limit: bool = False) -> tuple[Result, Result]:
    with bench_on(None, "remembered", grants_only_limit=grants_only_limit) as bench:
        replica = bench.start_replica()
        request_id, ts = bench.submit(replica, "A1")
        cold = bench.approve_together([(replica, request_id, ts)])
        slack_quiet(bench.slack, quiet_for=1.0)
        replica.process.terminate(timeout=30)  # a restarted process: only the database remembers
        replica.process.start()
        request_id, ts = bench.submit(replica, "A2")
        remembered = bench.approve_together([(replica, request_id, ts)])
    return cold, remembered


def two_replicas_or_one(
    database_url: str, replicas: int, *, grants_only_limit: bool = False, learned: bool = False
) -> Result:
    """Two requests approved at once, on `replicas` replicas; `learned`: after a first request (granted by
    the first replica, untimed) has taught the account's limit, as in a deployment that has granted before."""
    with bench_on(database_url, f"replicas{replicas}", grants_only_limit=grants_only_limit) as bench:
        started = [bench.start_replica() for _ in range(replicas)]
        if learned:
            bench.approve_together([(started[0], *bench.submit(started[0], "A0"))])
            slack_quiet(bench.slack, quiet_for=1.0)
        first = bench.submit(started[0], "A1")
        second = bench.submit(started[-1], "A2")
        return bench.approve_together([(started[0], *first), (started[-1], *second)])


def describe(scenario: str, results: list[Result], bound: float) -> str:
    seconds = statistics.median(r.seconds for r in results)
    granting = statistics.median(r.granting_seconds for r in results)
    throttles = statistics.median(r.throttles for r in results)
    share = statistics.median(r.throttled_share for r in results)
    return (
        f"| {scenario} | {seconds:.2f} s ({bound / seconds:.2f}) | {granting:.2f} s ({bound / granting:.2f}) | "
        f"{throttles:.0f} ({share:.0%}) |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default="remembered,replicas")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"), help="PostgreSQL URL (replicas)")
    parser.add_argument("--grants-only-limit", action="store_true", help="fake MTurk's limit counts grants alone")
    args = parser.parse_args()
    only = {"grants_only_limit": args.grants_only_limit}
    scenarios = {s.strip() for s in args.scenarios.split(",")}
    print(
        f"grant-qual MTurk budget benchmark — {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f} at "
        f"start; fake MTurk: {LATENCY * 1000:.0f} ms per grant, throttling above {LIMIT} calls/s "
        f"({'grants alone' if args.grants_only_limit else 'grants and reads'}); "
        f"{WORKERS} workers per request, MTURK_MAX_CONCURRENCY={SETTINGS['MTURK_MAX_CONCURRENCY']}\n",
        flush=True,
    )
    rows: list[str] = []
    if "remembered" in scenarios:
        colds, remembereds = [], []
        for run in range(args.runs):
            cold, remembered = cold_then_remembered(**only)
            colds.append(cold)
            remembereds.append(remembered)
            print(f"  run {run + 1}: cold {cold}; remembered {remembered}", flush=True)
        bound = WORKERS / LIMIT
        rows.append(describe("150 workers, cold (nothing known)", colds, bound))
        rows.append(describe("150 workers, remembered (restarted app)", remembereds, bound))
    if "replicas" in scenarios:
        if not args.postgres:
            print("  replicas: skipped (no --postgres and no TEST_DATABASE_URL)")
        else:
            bound = 2 * WORKERS / LIMIT
            for learned, known in ((False, "nothing known"), (True, "limit learned before")):
                ones, twos = [], []
                for run in range(args.runs):
                    one = two_replicas_or_one(args.postgres, 1, learned=learned, **only)
                    two = two_replicas_or_one(args.postgres, 2, learned=learned, **only)
                    ones.append(one)
                    twos.append(two)
                    print(f"  run {run + 1} ({known}): one replica {one}; two replicas {two}", flush=True)
                rows.append(describe(f"2 × 150 workers, one replica with both ({known})", ones, bound))
                rows.append(describe(f"2 × 150 workers, two replicas at once ({known})", twos, bound))
    print(
        f"\nMedians of {args.runs} run(s); in brackets, the bound (requests × {WORKERS} / {LIMIT} calls/s) over "
        "the time, and the throttled share of grant calls.\n"
    )
    print("| Scenario | Click to last summary | First to last grant | Throttled calls |\n| --- | ---: | ---: | ---: |")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
