"""Fetching the modal's uploaded file: looked up by its ID with files.info, downloaded with the bot token only
from Slack's file hosts over https (or the configured API host), and the token never follows a redirect away.

Another server on loopback plays the attacker: a host the app must never send the bot token to.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.slack.files import may_send_token
from tests.conftest import BOT_TOKEN, QUAL, REQUESTER, RunningApp
from tests.fakes._http import FakeHttpServer, HttpRequest, HttpResponse, text_response
from tests.slack_sender import modal_values

WORKER_LIST = b"A1ONE000000001\nA1TWO000000002\n"


class Attacker(FakeHttpServer):
    """A host that is not Slack: records every request, and answers with a worker list of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[HttpRequest] = []

    def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return text_response("A1ATTACKER00001\n", 200, "text/csv")

    def saw_token(self) -> bool:
        return any(BOT_TOKEN in value for request in self.requests for value in request.headers.values())


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    with Attacker() as server:
        yield server


def file_error(app: RunningApp, file: dict) -> str:
    answer = app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).json()
    assert answer["response_action"] == "errors"
    assert app.grant_qual.store.requests() == [] and app.slack.calls_to("chat.postMessage") == []
    return str(answer["errors"]["workers_file"])


def test_the_payloads_url_is_ignored_and_the_file_looked_up_by_its_id(app: RunningApp, attacker: Attacker) -> None:
    file = app.slack.host_file("F0LIST", "ids.txt", WORKER_LIST, filetype="text")
    file["url_private"] = f"{attacker.url}/steal"
    file["url_private_download"] = f"{attacker.url}/steal?download=1"
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[file])).body == ""
    assert [call.args["file"] for call in app.slack.calls_to("files.info")] == ["F0LIST"]
    assert app.slack.downloads == ["F0LIST"] and attacker.requests == []
    assert app.grant_qual.store.get(1).worker_count == 2  # type: ignore[union-attr]


def test_a_file_slack_does_not_know_is_refused_inline(app: RunningApp, attacker: Attacker) -> None:
    file = app.slack.host_file("F0LIST", "ids.txt", WORKER_LIST, filetype="text")
    file.update(id="F0FORGED", url_private_download=f"{attacker.url}/steal")
    assert "file_not_found" in file_error(app, file)
    assert attacker.requests == [] and app.slack.downloads == []


@pytest.mark.parametrize("where", ["http-elsewhere", "https-elsewhere", "https-on-the-api-port"])
def test_a_download_address_off_slacks_file_hosts_is_not_fetched(
    app: RunningApp, attacker: Attacker, where: str
) -> None:
    url = {
        "http-elsewhere": f"{attacker.url}/files-pri/F0LIST/ids.txt",
        "https-elsewhere": f"https://127.0.0.1:{attacker.port}/files-pri/F0LIST/ids.txt",
        # The configured API host, but not its scheme: only exactly the API's origin stands in for Slack's.
        "https-on-the-api-port": f"https://127.0.0.1:{app.slack.port}/files-pri/F0LIST/ids.txt",
    }[where]
    file = app.slack.host_file("F0LIST", "ids.txt", WORKER_LIST, filetype="text", url=url)
    assert "only https from Slack's file hosts" in file_error(app, file)
    assert attacker.requests == [] and app.slack.downloads == []


def test_a_redirect_to_another_host_never_carries_the_token(app: RunningApp, attacker: Attacker) -> None:
    file = app.slack.host_file(
        "F0MOVED", "ids.txt", WORKER_LIST, filetype="text", redirect_to=f"{attacker.url}/files/ids.txt"
    )
    assert "redirected the download" in file_error(app, file)
    assert app.slack.downloads == ["F0MOVED"]
    assert not attacker.saw_token() and attacker.requests == []


def test_a_redirect_on_the_same_host_is_followed(app: RunningApp) -> None:
    real = app.slack.host_file("F0REAL", "ids.txt", WORKER_LIST, filetype="text")
    moved = app.slack.host_file("F0MOVED", "old.txt", b"", filetype="text", redirect_to=real["url_private"])
    assert app.sender.submit_view(REQUESTER, modal_values(QUAL, files=[moved])).body == ""
    assert app.slack.downloads == ["F0MOVED", "F0REAL"]
    assert app.grant_qual.store.get(1).worker_count == 2  # type: ignore[union-attr]


SLACK_API = "https://slack.com/api/"
PROXY_API = "http://127.0.0.1:8080/api/"


@pytest.mark.parametrize(
    ("url", "api_base", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/ids.csv?download=1", SLACK_API, True),
        ("https://FILES.SLACK.COM/files-pri/T1-F1/ids.csv", SLACK_API, True),
        ("https://files.slack.com:443/files-pri/T1-F1/ids.csv", SLACK_API, True),
        ("https://files.slack-gov.com/files-pri/T1-F1/ids.csv", "https://slack-gov.com/api/", True),
        ("https://slack.com/files-pri/T1-F1/ids.csv", SLACK_API, True),  # the API's own origin
        ("http://files.slack.com/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("https://files.slack.com:8443/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("https://files.slack.com.example.org/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("https://files.slack.com@example.org/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("https://user@files.slack.com/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("https://example.org/?u=https://files.slack.com/", SLACK_API, False),
        ("https://slack.com.example.org/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("ftp://files.slack.com/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("//files.slack.com/files-pri/T1-F1/ids.csv", SLACK_API, False),
        ("", SLACK_API, False),
        ("http://127.0.0.1:8080/files-pri/F1/ids.csv", PROXY_API, True),
        ("http://127.0.0.1:8081/files-pri/F1/ids.csv", PROXY_API, False),
        ("https://127.0.0.1:8080/files-pri/F1/ids.csv", PROXY_API, False),
        ("http://localhost:8080/files-pri/F1/ids.csv", PROXY_API, False),
        ("http://127.0.0.1:notaport/files-pri/F1/ids.csv", PROXY_API, False),
    ],
)
def test_which_addresses_get_the_bot_token(url: str, api_base: str, allowed: bool) -> None:
    assert may_send_token(url, api_base) is allowed
