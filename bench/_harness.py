"""Shared plumbing of the benchmark scripts: the fakes, the app as a process, child-process load and baselines.

Not a benchmark itself. The scripts put the repository root on sys.path before importing this module.
Work that must not share the bench process's GIL with the fake servers (the boto3 baselines, the senders of
ack_latency) runs in a child process started with "spawn"; its functions live here so they pickle by name.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from bot.store import GrantStore, create_database_engine
from tests.app_process import AppProcess
from tests.conftest import BOT_TOKEN, QUAL, QUAL_NAME, SIGNING_SECRET, app_environment
from tests.fakes import FakeMTurk, FakeSlack
from tests.slack_sender import SlackResponse, SlackSender, signature

T = TypeVar("T")

# A second type of the same account, used only by the baselines so they never touch the app's grants.
BASELINE_QUAL = "3QUALTYPE0000000BENCH"
REGION = "us-east-1"


def use_fake_aws_credentials(scratch: Path) -> None:
    """boto3 (in the app, the baselines and this process) finds the fake's keys and nothing from the machine."""
    os.environ["AWS_ACCESS_KEY_ID"] = FakeMTurk.ACCESS_KEY
    os.environ["AWS_SECRET_ACCESS_KEY"] = FakeMTurk.SECRET_KEY
    os.environ["AWS_CONFIG_FILE"] = str(scratch / "no-aws-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(scratch / "no-aws-credentials")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MTURK"):
        os.environ.pop(name, None)


@dataclass
class Stack:
    """Fresh fakes, and the app as a real `python app.py` process on a fresh SQLite database."""

    slack: FakeSlack
    mturk: FakeMTurk
    process: AppProcess
    store: GrantStore
    sender: SlackSender
    workdir: Path

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def peak_rss_mb(self) -> float:
        """VmHWM of the app process: its peak resident set size since it started."""
        return self._status_mb("VmHWM")

    def rss_mb(self) -> float:
        """VmRSS of the app process: its resident set size now."""
        return self._status_mb("VmRSS")

    def _status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def app_cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system


@contextmanager
def running_stack(name: str, **app_settings: str) -> Iterator[Stack]:
    """Fakes in this process, the app in its own; everything stopped and removed on the way out."""
    with tempfile.TemporaryDirectory(prefix=f"grant-qual-bench-{name}-") as scratch:
        workdir = Path(scratch)
        use_fake_aws_credentials(workdir)
        with FakeSlack(bot_token=BOT_TOKEN) as slack, FakeMTurk() as mturk:
            mturk.add_type(QUAL, QUAL_NAME)
            mturk.add_type(BASELINE_QUAL, "Bench baseline")
            database_url = f"sqlite:///{workdir / 'grant-qual.db'}"
            process = AppProcess(app_environment(slack, mturk, database_url, **app_settings), workdir, name="app")
            process.start()
            store = GrantStore(create_database_engine(database_url))
            try:
                sender = SlackSender(process.events_url, SIGNING_SECRET, slack.response_url(""))
                yield Stack(slack, mturk, process, store, sender, workdir)
            finally:
                try:
                    if process.process is not None and process.process.poll() is None:
                        process.terminate(timeout=30)
                except Exception:
                    process.stop()
                store.engine.dispose()


def poll(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "") -> T:
    """Poll until `predicate` is truthy. Coarser than FakeSlack.wait_for, to steal less GIL from the fakes."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


def slack_quiet(slack: FakeSlack, *, quiet_for: float = 0.5, timeout: float = 30.0) -> None:
    """Wait until the app has made no Slack call for `quiet_for` seconds (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        with slack.lock:
            count = len(slack.calls)
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return
        time.sleep(0.05)


def in_child_process(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` in a fresh (spawned) Python process and return its result."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result(timeout=1800)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# ---------------------------------------------------------------------- child-process work


def boto3_baseline(
    endpoint_url: str, qualification_type_id: str, worker_ids: list[str], threads: int
) -> dict[str, Any]:
    """Plain boto3 `associate_qualification_with_worker` calls, in a loop (threads=1) or a thread pool.

    botocore's default configuration apart from the pool size (so connections are reused by every thread).
    Returns seconds (client creation excluded), the number of calls that raised, and the first error.
    """
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "mturk",
        region_name=REGION,
        endpoint_url=endpoint_url,
        config=Config(max_pool_connections=max(10, threads)),
    )
    errors: list[str] = []
    lock = threading.Lock()

    def grant(worker_id: str) -> None:
        try:
            client.associate_qualification_with_worker(
                QualificationTypeId=qualification_type_id, WorkerId=worker_id, IntegerValue=1, SendNotification=False
            )
        except Exception as error:
            with lock:
                errors.append(f"{type(error).__name__}: {error}")

    started = time.perf_counter()
    if threads <= 1:
        for worker_id in worker_ids:
            grant(worker_id)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(grant, worker_ids))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "errors": len(errors), "first_error": errors[0] if errors else None}


@dataclass
class TimedResponse(SlackResponse):
    seconds: float = 0.0


class TimedSender(SlackSender):
    """SlackSender whose post() times only the HTTP exchange (connect, send, read the whole answer)."""

    def post(self, form: dict[str, str], **options: Any) -> SlackResponse:
        body = urllib.parse.urlencode(form).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(self.signing_secret, ts, body),
        }
        request = urllib.request.Request(self.events_url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        except OSError as error:
            status, text = 0, f"{type(error).__name__}: {error}"
        return TimedResponse(status, text, time.perf_counter() - started)


def send_load(
    events_url: str, response_base: str, jobs: list[tuple], concurrency: int
) -> tuple[list[tuple[str, int, float]], float]:
    """Send `jobs` with `concurrency` threads, one new connection per request.

    Returns (kind, status, seconds) per job, in job order, and the wall time from the first send to the last answer.

    A job is ("command", user, text) or ("click", user, action_id, value, message_ts).
    """
    sender = TimedSender(events_url, SIGNING_SECRET, response_base)

    def send(job: tuple) -> tuple[str, int, float]:
        if job[0] == "command":
            response = sender.command(job[1], job[2])
        else:
            response = sender.click(job[1], job[2], job[3], message_ts=job[4])
        assert isinstance(response, TimedResponse)
        return job[0], response.status, response.seconds

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        results = list(pool.map(send, jobs))
        return results, time.perf_counter() - started
