"""Fetching a file someone uploaded in the grant modal: looked up by its ID, downloaded with the bot token.

The bot token goes only to Slack. The download address comes from files.info, not from the submission, and
is used only when it is https on one of Slack's file hosts, or exactly the origin of the configured Slack
API (a proxy, GovSlack, the tests' fake). A redirect is followed only on the same origin: urllib would
otherwise carry the Authorization header to whatever host the redirect names.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from email.message import Message
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 5 * 1024 * 1024  # 10,000 rows of a batch results CSV fit well within this
# The cap grows with MAX_WORKERS_PER_REQUEST at the same rate (about 524 bytes a worker): 50 MB at 100,000.
BYTES_PER_WORKER = MAX_FILE_BYTES // 10_000
# Where Slack serves url_private and url_private_download: commercial Slack and GovSlack.
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_MIN_DOWNLOAD_SECONDS = 0.25

Origin = tuple[str, str, int]


class FileDownloadError(Exception):
    """The file could not be fetched; the message is for the person who uploaded it."""


def max_file_bytes(max_workers: int) -> int:
    """The largest upload taken when a request may hold `max_workers` workers: never less than 5 MB."""
    return max(MAX_FILE_BYTES, max_workers * BYTES_PER_WORKER)


def fetch_uploaded_file(
    client: WebClient, file_id: str, *, timeout: float = 2.0, max_bytes: int = MAX_FILE_BYTES
) -> bytes:
    """The bytes of a `file_input` upload, at most `max_bytes`; the short timeout keeps the modal's answer
    within Slack's 3 s."""
    deadline = time.monotonic() + timeout
    file = _file_info(client, file_id, timeout / 2)
    if int(file.get("size") or 0) > max_bytes:
        raise FileDownloadError(_too_large(max_bytes))
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url:
        raise FileDownloadError("Slack did not say where the file is; upload it again.")
    if not may_send_token(url, client.base_url):
        log.warning("files.info gave a download address off Slack's file hosts (%s); not fetched", _host(url))
        raise FileDownloadError(
            "Slack gave a download address the app does not use (only https from Slack's file hosts); "
            "upload the file again."
        )
    remaining = max(deadline - time.monotonic(), _MIN_DOWNLOAD_SECONDS)
    return _download(url, client.token or "", remaining, max_bytes)


def _too_large(max_bytes: int) -> str:
    return f"The file is larger than {max_bytes // (1024 * 1024)} MB; split it."


def may_send_token(url: str, api_base_url: str) -> bool:
    """Whether `url` may be fetched with the bot token: https on a Slack file host, or the API's own origin."""
    origin = _origin(url)
    if origin is None:
        return False
    scheme, host, port = origin
    if scheme == "https" and host in SLACK_FILE_HOSTS and port == 443:
        return True
    return origin == _origin(api_base_url)


def _file_info(client: WebClient, file_id: str, timeout: float) -> dict[str, Any]:
    if not file_id:
        raise FileDownloadError("Slack did not say which file was uploaded; upload it again.")
    # A client of its own: the app's retries on 429 and 5xx would wait far longer than the modal may.
    quick = WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes seconds as a float
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        retry_handlers=[],
    )
    try:
        file = quick.files_info(file=file_id).get("file")
    except SlackApiError as error:
        code = str(error.response.get("error") or "error")
        if code == "missing_scope":
            raise FileDownloadError("Slack did not let the app look the file up; may it read files?") from None
        raise FileDownloadError(f"Slack could not find the file ({code}); upload it again.") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError):
        raise FileDownloadError("The file could not be looked up in Slack in time; try again.") from None
    if not isinstance(file, dict):
        raise FileDownloadError("Slack did not describe the file; upload it again.")
    return file


def _download(url: str, token: str, timeout: float, max_bytes: int) -> bytes:
    opener = urllib.request.build_opener(_SameOriginRedirects())  # in place of urllib's own redirect handler
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with opener.open(request, timeout=timeout) as response:
            content = response.read(max_bytes + 1)
            if "text/html" in response.headers.get("Content-Type", "") and b"<html" in content[:512].lower():
                raise FileDownloadError("Slack answered with a sign-in page; is the app allowed to read files?")
    except urllib.error.HTTPError as error:
        raise FileDownloadError(f"Slack refused the download (HTTP {error.code}); upload the file again.") from None
    except (urllib.error.URLError, TimeoutError, OSError):
        raise FileDownloadError("The file could not be downloaded from Slack in time; try again.") from None
    if len(content) > max_bytes:
        raise FileDownloadError(_too_large(max_bytes))
    return content


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only within the origin it came from, so the bot token never reaches another host."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            fp.close()
            log.warning("a file download was redirected to %s; not followed", _host(newurl))
            raise FileDownloadError(
                "Slack redirected the download away from its file host, and the app sends its token nowhere "
                "else; is the app allowed to read files?"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL without user info; None for anything else."""
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _host(url: str) -> str:
    """Only the host, for a log line: a file's address also names the workspace and the file."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
