"""100,000 workers in one request: time against MTurk's bound, peak memory of the app, throttled share.

What runs: `python app.py` as a real process in HTTP mode (a fresh SQLite database) with
MAX_WORKERS_PER_REQUEST=100000, against the wire-level FakeSlack and FakeMTurk from tests/fakes in this
process. The workers come as an uploaded batch results CSV through the grant modal (files.info, download,
parse), the request is previewed, approved with a signed click, and the clock runs from the click to the result
summary in the thread. The results CSV uploaded to the thread is then checked for every worker.

MTurk answers after 20 ms and throttles above 500 calls in any trailing second (the app is not told; its
limiter finds the rate), so the bound is 500 workers/s: 100,000 workers in 200 s.

Run from the repository root (about 5 minutes on 2 cores; the machine's load moves the figures):

    .venv/bin/python bench/hundred_k.py
    .venv/bin/python bench/hundred_k.py --workers 20000

It prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import poll, running_stack, slack_quiet  # noqa: E402
from bot.requests import WorkerStatus  # noqa: E402
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, posted_for  # noqa: E402
from tests.slack_sender import modal_values  # noqa: E402

LATENCY = 0.02
THROTTLE_TPS = 500


def batch_results_csv(worker_ids: list[str]) -> bytes:
    """A requester site batch results CSV: one assignment per worker, a short answer each (about 90 bytes)."""
    header = "HITId,HITTypeId,Title,AssignmentId,WorkerId,AssignmentStatus,Answer.feedback\r\n"
    rows = [f'3H{i:018d},3T0,Survey,3A{i:018d},{w},Approved,"fine, thanks"\r\n' for i, w in enumerate(worker_ids)]
    return (header + "".join(rows)).encode()


@dataclass
class HundredK:
    """What one run measured: the grant against MTurk's bound, the app's memory and CPU, MTurk's answers."""

    workers: int
    mturk_tps: float
    csv_mb: float  # the uploaded batch results CSV
    modal_seconds: float  # the modal's answer (download, parse, store; or the waiting view at the deadline)
    modal_late: bool  # answered with the waiting view: the work went on after the ack
    posted_after: float  # seconds from the upload to the approval message
    seconds: float  # from the Approve click to the result summary
    idle_rss_mb: float  # the app before the upload
    peak_rss_mb: float  # the app's peak by the end
    peaks: dict[str, float]  # the app's peak RSS by the end of each phase
    app_cpu: float  # seconds of CPU of the app during the grant
    fakes_cpu: float  # seconds of CPU of this process (the fakes) during the grant
    first_grant_after: float  # seconds from the click to the first grant MTurk accepted
    steady_rate: float | None  # grants per second from 10% to 90% of them (None under 10 grants)
    summary_after_last_grant: float  # seconds
    calls: int  # AssociateQualificationWithWorker calls
    throttles: int
    counts: dict[WorkerStatus, int]
    duplicates: int
    results_rows: int

    @property
    def bound(self) -> float:
        """Seconds the workers take at MTurk's limit."""
        return self.workers / self.mturk_tps

    @property
    def throttled_share(self) -> float:
        return self.throttles / max(self.calls, 1)


def batch_size_mb(workers: int) -> float:
    return len(batch_results_csv(worker_ids(workers))) / 1e6


def worker_ids(n: int) -> list[str]:
    return [f"A{i:013d}" for i in range(n)]


def run_hundred_k(n: int, concurrency: int = 20, mturk_tps: float = THROTTLE_TPS) -> HundredK:
    """One request of `n` workers: uploaded, previewed, approved, granted; raises if the modal refuses it."""
    content = batch_results_csv(worker_ids(n))
    bound = float(mturk_tps)
    settings = {
        "MAX_WORKERS_PER_REQUEST": str(max(n, 1)),
        "MTURK_MAX_CONCURRENCY": str(concurrency),
        "MTURK_MAX_TPS": str(int(bound * 2)),  # above MTurk's limit: the limiter must find it
    }
    with running_stack("hundred-k", **settings) as stack:
        stack.mturk.latency = LATENCY
        stack.mturk.throttle_above_tps = bound
        idle_rss = stack.rss_mb()
        file = stack.slack.host_file("F0HUNDREDK", "Batch_1_batch_results.csv", content)
        metadata = json.dumps({"response_url": stack.slack.response_url("upload")})
        sent = time.monotonic()
        reply = stack.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file]), private_metadata=metadata)
        modal_seconds = time.monotonic() - sent
        peaks = {"the modal (download, parse, store)": stack.peak_rss_mb()}
        # A plain ack (stored in time), or the waiting view (still reading: the outcome follows by views.update).
        late = reply.status == 200 and '"response_action": "update"' in reply.body
        if reply.status != 200 or (reply.body and not late):
            raise RuntimeError(f"the modal answered {reply.status}: {reply.body[:300]}")
        request = poll(
            lambda: (r := stack.store.get(1)) is not None and r.message_ts is not None and r,
            timeout=600,
            what="the approval message",
        )
        assert request and request.message_ts
        posted_after = time.monotonic() - sent
        slack_quiet(stack.slack, quiet_for=1.0, timeout=120)  # the preview file comes after the message
        peaks["the preview and its CSV"] = stack.peak_rss_mb()
        throttles_before = stack.mturk.injected_faults["ThrottlingException"]
        app_cpu_before, fakes_cpu_before = stack.app_cpu_seconds(), time.process_time()
        clicked_at = time.time()
        stack.sender.click(APPROVER, "approve_request", str(request.id), message_ts=request.message_ts)

        def summary() -> dict | None:
            with stack.slack.lock:
                return next(
                    (
                        m
                        for m in stack.slack.messages
                        if m["channel"] == CHANNEL
                        and m["thread_ts"] == request.message_ts
                        and posted_for(m) == "finished"
                    ),
                    None,
                )

        posted = poll(summary, timeout=4 * n / bound + 300, interval=0.2, what="the result summary")
        seconds = float(posted["ts"]) - clicked_at
        app_cpu, fakes_cpu = stack.app_cpu_seconds() - app_cpu_before, time.process_time() - fakes_cpu_before
        peaks["the grant"] = stack.peak_rss_mb()
        with stack.mturk.lock:
            calls = sum(1 for name, _ in stack.mturk.requests if name == "AssociateQualificationWithWorker")
            granted = [g.worker_id for g in stack.mturk.grants if g.qualification_type_id == QUAL]
            granted_at = sorted(g.granted_at for g in stack.mturk.grants if g.qualification_type_id == QUAL)
        throttles = stack.mturk.injected_faults["ThrottlingException"] - throttles_before

        def results() -> list[bytes]:
            return [
                bytes(u["bytes"])
                for u in stack.slack.uploaded_files.values()
                if u.get("completed") and u["filename"].endswith("-round-1-results.csv")
            ]

        (results_file,) = poll(results, timeout=300, interval=0.5, what="the results CSV")
        slack_quiet(stack.slack, quiet_for=1.0, timeout=120)
        peak = stack.peak_rss_mb()
        counts = stack.store.status_counts(request.id)
    return HundredK(
        workers=n,
        mturk_tps=bound,
        csv_mb=len(content) / 1e6,
        modal_seconds=modal_seconds,
        modal_late=late,
        posted_after=posted_after,
        seconds=seconds,
        idle_rss_mb=idle_rss,
        peak_rss_mb=peak,
        peaks=peaks,
        app_cpu=app_cpu,
        fakes_cpu=fakes_cpu,
        first_grant_after=granted_at[0] - clicked_at if granted_at else float("nan"),
        steady_rate=steady_rate(granted_at),
        summary_after_last_grant=float(posted["ts"]) - granted_at[-1] if granted_at else float("nan"),
        calls=calls,
        throttles=throttles,
        counts=counts,
        duplicates=len(granted) - len(set(granted)),
        results_rows=results_file.count(b"\n") - 1,
    )


def steady_rate(granted_at: list[float]) -> float | None:
    """Grants per second between the 10th and the 90th percentile of their (sorted) times: the pace, ramp apart."""
    if len(granted_at) < 10:
        return None
    tenth, ninth = granted_at[len(granted_at) // 10], granted_at[len(granted_at) * 9 // 10]
    return len(granted_at) * 0.8 / max(ninth - tenth, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=20, help="MTURK_MAX_CONCURRENCY (default 20)")
    parser.add_argument("--mturk-tps", type=float, default=THROTTLE_TPS, help="MTurk's simulated rate limit")
    args = parser.parse_args()
    n, bound = args.workers, float(args.mturk_tps)
    print(
        f"{n:,} workers, batch results CSV of {batch_size_mb(n):.1f} MB; MTurk {LATENCY * 1000:.0f} ms, "
        f"throttling above {bound:.0f}/s; bound {n / bound:.0f} s",
        flush=True,
    )
    try:
        r = run_hundred_k(n, args.concurrency, bound)
    except RuntimeError as error:
        print(error)
        return 1
    how = "with its waiting view (the work went on)" if r.modal_late else "with the request stored"
    print(f"modal answered in {r.modal_seconds:.2f} s {how}; approval message {r.posted_after:.1f} s after the upload")
    print(
        f"grant: {r.seconds:.1f} s for {n:,} workers = {n / r.seconds:.0f}/s = {r.seconds / r.bound:.3f}× the bound "
        f"({r.bound:.0f} s at {bound:.0f}/s)"
    )
    if r.steady_rate is not None:
        print(
            f"  first grant {r.first_grant_after:.1f} s after the click; steady rate (10%–90% of the grants) "
            f"{r.steady_rate:.0f}/s; summary {r.summary_after_last_grant:.1f} s after the last grant"
        )
    print(f"peak RSS of the app {r.peak_rss_mb:.0f} MB (idle before the upload {r.idle_rss_mb:.0f} MB)")
    print("  peak by the end of " + "; ".join(f"{phase}: {mb:.0f} MB" for phase, mb in r.peaks.items()))
    print(
        f"CPU during the grant: the app {r.app_cpu:.0f} s ({r.app_cpu / r.seconds:.0%} of a core, "
        f"{r.app_cpu / max(r.calls, 1) * 1000:.2f} ms per call); the fakes {r.fakes_cpu:.0f} s "
        f"({r.fakes_cpu / r.seconds:.0%})"
    )
    print(f"AssociateQualificationWithWorker calls {r.calls:,}; throttled {r.throttles:,} = {r.throttled_share:.1%}")
    print(
        f"granted {r.counts[WorkerStatus.GRANTED]:,}, failed {r.counts[WorkerStatus.FAILED]:,}, pending "
        f"{r.counts[WorkerStatus.PENDING]:,}; duplicate grants {r.duplicates}; results CSV rows {r.results_rows:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
