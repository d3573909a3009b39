"""Socket Mode clients under connection faults: which one keeps a Slack app reachable.

What runs: FakeSlack (apps.connections.open) and the fake Socket Mode gateway from tests/fakes, in this
process; each client in a child process of its own (so its CPU is its own), connected with an app-level token
and acknowledging every envelope. For each client and fault, a fresh child connects, settles for 3 s, and then
the gateway breaks the connection (see tests/fakes/socket_mode.py):

  half_close  the server ends its side of TCP (FIN) and stops reading, no close frame (a proxy timing out)
  drop        the server closes both ways, no close frame
  reset       the server aborts the connection (RST)
  freeze      the socket stays open but the server answers nothing, not even pings
  refresh     Slack's `disconnect` (refresh_requested), then a proper close 5 s later
  dns         a reset, and the next two apps.connections.open URLs name a host that does not resolve

From the fault on, an envelope is sent every 0.5 s for 15 s, each to the newest live connection; one with no
connection to go to, or not acknowledged, within 3 s (Slack's limit) is lost. Per client and fault it prints:
the time from the fault to the next apps.connections.open (noticed), to the new connection (reconnected), the
child's CPU seconds in between (a busy loop shows here), envelopes lost of 30, and the slowest ack.

Clients: slack_sdk's built-in client (Bolt's default), the same with grant-qual's watchdog (what app.py runs),
and slack_sdk's `websocket_client`, `aiohttp` and `websockets` clients where their packages import (the two
async ones need aiohttp for the Web API). Bolt's adapters use ping_interval=10; so do the stock clients here.

Run from the repository root (about 5 minutes; the machine is shared, so figures are indicative):

    .venv/bin/python bench/socket_mode_clients.py
    .venv/bin/python bench/socket_mode_clients.py --clients builtin watched --faults half_close reset

It prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.conftest import BOT_TOKEN  # noqa: E402
from tests.fakes import FakeSlack  # noqa: E402
from tests.fakes.socket_mode import FakeSocketMode  # noqa: E402

CLIENTS = ["builtin", "watched", "websocket_client", "aiohttp", "websockets"]
FAULTS = ["half_close", "drop", "reset", "freeze", "refresh", "dns"]
NEEDS = {"websocket_client": ["websocket"], "aiohttp": ["aiohttp"], "websockets": ["websockets", "aiohttp"]}
PACKAGES = {"websocket_client": "websocket-client", "aiohttp": "aiohttp", "websockets": "aiohttp"}
GIVE_UP_AFTER = 75.0
SEND_EVERY, SEND_FOR, SLACK_WAITS = 0.5, 15.0, 3.0


@dataclass
class Outcome:
    noticed: float | None
    reconnected: float | None
    cpu: float
    lost: int
    sent: int
    slowest_ack: float | None


def available(client: str) -> bool:
    try:
        for module in NEEDS.get(client, []):
            importlib.import_module(module)
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- the child side


def run_sync_client(kind: str, api_url: str, token: str) -> None:
    from slack_sdk import WebClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    web = WebClient(base_url=api_url)
    if kind == "watched":
        from bot.slack.socket_mode import PING_INTERVAL, ConnectionWatchdog, WatchedSocketModeClient

        client = WatchedSocketModeClient(
            app_token=token, web_client=web, auto_reconnect_enabled=False, ping_interval=PING_INTERVAL
        )
        client.watchdog = ConnectionWatchdog(client)
    else:
        module = importlib.import_module(f"slack_sdk.socket_mode.{kind}")
        client = module.SocketModeClient(app_token=token, web_client=web, ping_interval=10)

    def ack(client: object, req: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))  # type: ignore[attr-defined]

    client.socket_mode_request_listeners.append(ack)
    client.connect()
    if kind == "watched":
        client.watchdog.start()
    threading.Event().wait()


async def run_async_client(kind: str, api_url: str, token: str) -> None:
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse
    from slack_sdk.web.async_client import AsyncWebClient

    module = importlib.import_module(f"slack_sdk.socket_mode.{kind}")
    client = module.SocketModeClient(app_token=token, web_client=AsyncWebClient(base_url=api_url), ping_interval=10)

    async def ack(client: object, req: SocketModeRequest) -> None:
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))  # type: ignore[attr-defined]

    client.socket_mode_request_listeners.append(ack)
    await client.connect()
    await asyncio.Event().wait()


def child(kind: str, api_url: str, token: str) -> None:
    if kind in ("aiohttp", "websockets"):
        asyncio.run(run_async_client(kind, api_url, token))
    else:
        run_sync_client(kind, api_url, token)


# --------------------------------------------------------------------------------------------- the parent side


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def deliver(gateway: FakeSocketMode, number: int) -> float | None:
    """One envelope as Slack sends it; the seconds to its acknowledgement, or None if lost."""
    started = time.monotonic()
    try:
        gateway.send("events_api", {"type": "event_callback", "event": {"type": "bench", "n": number}}, SLACK_WAITS)
    except AssertionError:
        return None
    return time.monotonic() - started


def measure(client: str, fault: str) -> Outcome:
    with FakeSlack(bot_token=BOT_TOKEN) as slack:
        gateway = FakeSocketMode()
        slack.socket_mode = gateway
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", client, slack.api_url, slack.app_token],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if not gateway.wait_connected(20):
                raise RuntimeError(f"{client} did not connect")
            time.sleep(3)
            return break_and_watch(gateway, slack, psutil.Process(process.pid), fault)
        finally:
            process.kill()
            process.wait(10)
            gateway.close()


def break_and_watch(gateway: FakeSocketMode, slack: FakeSlack, child_process: psutil.Process, fault: str) -> Outcome:
    opens_before = len(slack.calls_to("apps.connections.open"))
    connections_before = gateway.connections_opened
    if fault == "dns":
        gateway.fail_next_opens(2)
    cpu_before = cpu_of(child_process)
    started = time.monotonic()
    gateway.fault("reset" if fault == "dns" else fault, grace=5.0)  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=int(SLACK_WAITS * 2 / SEND_EVERY) + 2) as senders:
        deliveries = []
        noticed = reconnected = None
        cpu = 0.0
        while time.monotonic() - started < GIVE_UP_AFTER:
            elapsed = time.monotonic() - started
            if elapsed < SEND_FOR and len(deliveries) < elapsed / SEND_EVERY:
                deliveries.append(senders.submit(deliver, gateway, len(deliveries)))
            if noticed is None and len(slack.calls_to("apps.connections.open")) > opens_before:
                noticed = elapsed
            if reconnected is None and gateway.connections_opened > connections_before:
                reconnected = elapsed
                cpu = cpu_of(child_process) - cpu_before
            if reconnected is not None and elapsed >= SEND_FOR:
                break
            time.sleep(0.05)
        if reconnected is None:
            cpu = cpu_of(child_process) - cpu_before
        latencies = [d.result() for d in deliveries]
    acked = [latency for latency in latencies if latency is not None]
    return Outcome(noticed, reconnected, cpu, len(latencies) - len(acked), len(latencies), max(acked, default=None))


def seconds(value: float | None) -> str:
    return f">{GIVE_UP_AFTER:.0f}" if value is None else f"{value:.1f}"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", nargs="+", default=CLIENTS, choices=CLIENTS)
    parser.add_argument("--faults", nargs="+", default=FAULTS, choices=FAULTS)
    args = parser.parse_args()
    print("| client | fault | noticed (s) | reconnected (s) | CPU in outage (s) | envelopes lost | slowest ack (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for client in args.clients:
        if not available(client):
            print(f"| {client} | (not installed: pip install {PACKAGES[client]}) | | | | | |")
            continue
        for fault in args.faults:
            outcome = measure(client, fault)
            slowest = "-" if outcome.slowest_ack is None else f"{outcome.slowest_ack:.2f}"
            print(
                f"| {client} | {fault} | {seconds(outcome.noticed)} | {seconds(outcome.reconnected)} | "
                f"{outcome.cpu:.1f} | {outcome.lost}/{outcome.sent} | {slowest} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
