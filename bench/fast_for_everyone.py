"""Fast for everyone: the fairness, replica, remembered-limit and 100,000-worker benchmarks in one run, side by side.

Each scenario is the function of its own script, run here unchanged (see those scripts' docstrings for what
runs and how it is timed):

  fairness    bench/fairness.py: five 200-worker requests and a 3-worker one approved while they run (MTurk
              throttling above 50 calls/s). Goals: the small request's result within 2 s of its click; the big
              ones' total within 10% of the bound (1,003 calls at 50/s).
  replicas    bench/budget.py: two 150-worker requests on PostgreSQL, granted by two replicas against one
              replica taking both (MTurk throttling above 50 calls/s, the approval's reads counted with the
              grants), with nothing known and after a first request has taught the limit. Goals: two
              replicas' total within 5% of one replica's, and no more throttled calls than one replica's.
              Needs --postgres URL or TEST_DATABASE_URL; skipped without.
  remembered  bench/budget.py: 150 workers with nothing known (cold), then 150 more after a restart, starting
              from the stored ceiling (remembered); reads counted too. Goals: remembered within 5% of the bound
              (3 s), cold within 10%, and at most 10% of either's grant calls throttled. The time is shown
              twice: first to last grant against the bound, and click to result against the bound plus the
              round trips no pacing can save (the approval's re-read of the holders before the first grant, a
              page per 100 holders, and the last grant's answer: 3.18 s cold, 3.28 s remembered, where the
              type has the cold run's 150 holders), since from the click the bound itself is out of reach.
  hundred_k   bench/hundred_k.py: one request of 100,000 workers from an uploaded batch results CSV. Goals:
              within 5% of the bound (workers / MTurk's limit), the app's peak RSS at most 150 MB; the
              throttled share is shown, with no goal set.

MTurk's limit in hundred_k is --mturk-tps, 250 calls/s by default (bench/hundred_k.py alone defaults to 500).
One app process on this 2-core machine is CPU-bound near 450 calls/s (botocore spends about 1.9 ms of CPU on
each call), so with a limit above that the grant's time measures the machine, not the app's pacing.

The table at the end has one row per goal: the measured figure (the median over the runs), the bound or goal,
their ratio (measured / the figure in the goal column; the allowance is in brackets) and whether it is met.

Run from the repository root:

    .venv/bin/python bench/fast_for_everyone.py --quick      # 20,000 workers, 1 run each: about 5 minutes
    .venv/bin/python bench/fast_for_everyone.py              # 100,000 workers, 3 runs of the others: about 15 minutes
    .venv/bin/python bench/fast_for_everyone.py --skip replicas,hundred_k --runs 1

It prints figures only; nothing is asserted (it exits 1 only if a scenario fails to run). The machine's load
moves the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import budget, fairness, hundred_k  # noqa: E402

SMALL_LATENCY_GOAL = 2.0
FAIRNESS_ALLOWANCE = 1.10
REPLICAS_ALLOWANCE = 1.05
REMEMBERED_ALLOWANCE, COLD_ALLOWANCE = 1.05, 1.10
THROTTLED_SHARE_GOAL = 0.10
HUNDRED_K_ALLOWANCE = 1.05
PEAK_RSS_GOAL_MB = 150.0


@dataclass
class Row:
    """One line of the table: a measured figure against its bound or goal."""

    scenario: str
    measured: str
    goal: str
    ratio: float | None = None  # measured / the figure in `goal`
    met: bool | None = None  # None: nothing to meet (a reference or an unset goal)

    def markdown(self) -> str:
        ratio = "—" if self.ratio is None else f"{self.ratio:.2f}"
        met = "—" if self.met is None else ("yes" if self.met else "**no**")
        return f"| {self.scenario} | {self.measured} | {self.goal} | {ratio} | {met} |"


@dataclass
class Options:
    runs: int
    workers: int
    mturk_tps: float
    postgres: str | None


def against(scenario: str, seconds: float, bound: float, allowance: float, what: str = "bound") -> Row:
    """A time against a bound it may exceed by `allowance` (a factor)."""
    ratio = seconds / bound
    return Row(scenario, f"{seconds:.2f} s", f"{what} {bound:.2f} s (≤ {allowance:.2f}×)", ratio, ratio <= allowance)


def share_row(scenario: str, throttles: float, calls: float, goal: float | None) -> Row:
    share = throttles / calls if calls else float("nan")
    measured = f"{throttles:.0f} of {calls:,.0f} calls ({share:.1%})"
    if goal is None:
        return Row(scenario, measured, "none set")
    return Row(scenario, measured, f"≤ {goal:.0%}", share / goal, share <= goal)


def fairness_rows(options: Options) -> list[Row]:
    results = []
    for run in range(options.runs):
        r = fairness.run_fairness()
        results.append(r)
        print(
            f"  fairness run {run + 1}: small request {r.small_latency:.2f} s ({r.still_granting} of "
            f"{fairness.BIG} big ones still granting); big ones {r.total:.2f} s against {r.bound:.2f} s; "
            f"{r.throttles} throttles, {r.duplicates} duplicate grants",
            flush=True,
        )
    small = median([r.small_latency for r in results])
    return [
        Row(
            f"fairness: the {fairness.SMALL_WORKERS}-worker request, click to result",
            f"{small:.2f} s",
            f"< {SMALL_LATENCY_GOAL:.0f} s",
            small / SMALL_LATENCY_GOAL,
            small < SMALL_LATENCY_GOAL,
        ),
        against(
            f"fairness: the {fairness.BIG} × {fairness.BIG_WORKERS}-worker requests, first click to last result",
            median([r.total for r in results]),
            results[0].bound,
            FAIRNESS_ALLOWANCE,
        ),
    ]


def replicas_rows(options: Options) -> list[Row]:
    if not options.postgres:
        return [Row("replicas", "skipped: no --postgres and no TEST_DATABASE_URL", "")]
    rows = []
    for learned, known in ((False, "nothing known"), (True, "limit learned before")):
        ones, twos = [], []
        for run in range(options.runs):
            ones.append(budget.two_replicas_or_one(options.postgres, 1, learned=learned))
            twos.append(budget.two_replicas_or_one(options.postgres, 2, learned=learned))
            print(f"  replicas run {run + 1} ({known}): one replica {ones[-1]}; two replicas {twos[-1]}", flush=True)
        rows += replicas_compared(f"replicas ({known}): 2 × {budget.WORKERS} workers", ones, twos)
    return rows


def replicas_compared(name: str, ones: list[budget.Result], twos: list[budget.Result]) -> list[Row]:
    bound = 2 * budget.WORKERS / budget.LIMIT
    one, two = median([r.seconds for r in ones]), median([r.seconds for r in twos])
    one_throttles, two_throttles = median([r.throttles for r in ones]), median([r.throttles for r in twos])
    calls = median([r.calls for r in twos])
    return [
        Row(f"{name}, one replica with both (reference)", f"{one:.2f} s", f"bound {bound:.2f} s", one / bound),
        against(f"{name}, two replicas at once", two, one, REPLICAS_ALLOWANCE, what="one replica's"),
        Row(
            f"{name}, throttled calls: two replicas against one",
            f"{two_throttles:.0f} of {calls:.0f} calls",
            f"≤ one replica's {one_throttles:.0f}",
            two_throttles / one_throttles if one_throttles else None,
            two_throttles <= one_throttles,
        ),
    ]


def remembered_rows(options: Options) -> list[Row]:
    colds, remembereds = [], []
    for run in range(options.runs):
        cold, remembered = budget.cold_then_remembered()
        colds.append(cold)
        remembereds.append(remembered)
        print(f"  remembered run {run + 1}: cold {cold}; remembered {remembered}", flush=True)
    bound = budget.WORKERS / budget.LIMIT
    name = f"{budget.WORKERS} workers"
    rows = []
    for label, results, allowance in (
        ("remembered limit (restarted app)", remembereds, REMEMBERED_ALLOWANCE),
        ("cold limit (nothing known)", colds, COLD_ALLOWANCE),
    ):
        granting = median([r.granting_seconds for r in results])
        rows.append(against(f"{name}, {label}, first to last grant", granting, bound, allowance))
        # From the click, no pacing can beat the bound plus the round trips before the first grant and after
        # the last: the approval's re-read of the holders (bot/preview.py's drift check; one page per 100
        # holders, one after another: the remembered run's type already has the cold run's 150), and the last
        # grant's answer.
        seconds = median([r.seconds for r in results])
        trips = 1 + max(r.holder_pages for r in results)
        floor = bound - 1 / budget.LIMIT + trips * budget.LATENCY
        rows.append(
            against(f"{name}, {label}, click to result", seconds, floor, allowance, what=f"bound + {trips} round trips")
        )
        throttles, calls = median([r.throttles for r in results]), median([r.calls for r in results])
        rows.append(share_row(f"{name}, {label}, throttled", throttles, calls, THROTTLED_SHARE_GOAL))
    return rows


def hundred_k_rows(options: Options) -> list[Row]:
    # One run even without --quick: at 250 calls/s, 100,000 workers take nearly 7 minutes.
    r = hundred_k.run_hundred_k(options.workers, mturk_tps=options.mturk_tps)
    print(
        f"  hundred_k: {r.workers:,} workers in {r.seconds:.1f} s against {r.bound:.0f} s (first grant after "
        f"{r.first_grant_after:.1f} s, steady {r.steady_rate or float('nan'):.0f}/s); peak RSS "
        f"{r.peak_rss_mb:.0f} MB (idle {r.idle_rss_mb:.0f}); app CPU {r.app_cpu / max(r.calls, 1) * 1000:.2f} ms "
        f"per call; {r.throttles:,} of {r.calls:,} calls throttled; duplicate grants {r.duplicates}",
        flush=True,
    )
    name = f"{r.workers:,} workers"
    return [
        against(f"{name} at {r.mturk_tps:.0f} calls/s, click to result", r.seconds, r.bound, HUNDRED_K_ALLOWANCE),
        Row(
            f"{name}, peak RSS of the app",
            f"{r.peak_rss_mb:.0f} MB",
            f"≤ {PEAK_RSS_GOAL_MB:.0f} MB",
            r.peak_rss_mb / PEAK_RSS_GOAL_MB,
            r.peak_rss_mb <= PEAK_RSS_GOAL_MB,
        ),
        share_row(f"{name}, throttled", r.throttles, r.calls, None),
    ]


# In the order; the names are what --skip takes.
SCENARIOS: dict[str, Callable[[Options], list[Row]]] = {
    "fairness": fairness_rows,
    "replicas": replicas_rows,
    "remembered": remembered_rows,
    "hundred_k": hundred_k_rows,
}


def parse_options() -> tuple[Options, set[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 workers and 1 run of each scenario")
    parser.add_argument("--runs", type=int, help="runs of fairness, replicas and remembered (default 3; quick 1)")
    parser.add_argument("--workers", type=int, help="workers in hundred_k (default 100,000; quick 20,000)")
    parser.add_argument("--mturk-tps", type=float, default=250, help="MTurk's limit in hundred_k (default 250)")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"), help="PostgreSQL URL (replicas)")
    parser.add_argument("--skip", default="", help=f"comma-separated scenarios to skip: {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    if unknown := skip - SCENARIOS.keys():
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    runs = args.runs or (1 if args.quick else 3)
    workers = args.workers or (20_000 if args.quick else 100_000)
    return Options(runs, workers, args.mturk_tps, args.postgres), skip


def main() -> int:
    options, skip = parse_options()
    print(
        f"grant-qual, fast for everyone — {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f} at start; "
        f"{options.runs} run(s) of each scenario but hundred_k, {options.workers:,} workers in hundred_k at "
        f"{options.mturk_tps:.0f} calls/s\n",
        flush=True,
    )
    rows: list[Row] = []
    failed = False
    for name, scenario in SCENARIOS.items():
        if name in skip:
            rows.append(Row(name, "skipped (--skip)", ""))
            continue
        print(f"{name}:", flush=True)
        try:
            rows.extend(scenario(options))
        except Exception as error:  # one broken scenario should not hide the others' figures
            traceback.print_exc()
            failed = True
            rows.append(Row(name, f"failed: {type(error).__name__}: {error}", ""))
    print(f"\nMedians of {options.runs} run(s) (hundred_k: one run); ratio = measured / the bound or goal.\n")
    print("| Scenario | Measured | Bound / goal | Ratio | Met? |\n| --- | ---: | ---: | ---: | :---: |")
    for row in rows:
        print(row.markdown())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
