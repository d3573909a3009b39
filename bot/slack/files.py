"""Downloading a file someone uploaded in the grant modal, with the bot token, as Slack requires."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

MAX_FILE_BYTES = 5 * 1024 * 1024  # 10,000 rows of a batch results CSV fit well within this


class FileDownloadError(Exception):
    """The file could not be fetched; the message is for the person who uploaded it."""


def download_uploaded_file(file: dict[str, Any], token: str, *, timeout: float = 2.0) -> bytes:
    """The bytes of a `file_input` upload; the short timeout keeps the modal's answer within Slack's 3 s."""
    if int(file.get("size") or 0) > MAX_FILE_BYTES:
        raise FileDownloadError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it.")
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    if not url.startswith(("https://", "http://")):
        raise FileDownloadError("Slack did not say where the file is; upload it again.")
    # The URL comes from a payload whose Slack signature was verified, so the token goes only to Slack.
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content = response.read(MAX_FILE_BYTES + 1)
            if "text/html" in response.headers.get("Content-Type", "") and b"<html" in content[:512].lower():
                raise FileDownloadError("Slack answered with a sign-in page; is the app allowed to read files?")
    except urllib.error.HTTPError as error:
        raise FileDownloadError(f"Slack refused the download (HTTP {error.code}); upload the file again.") from None
    except (urllib.error.URLError, TimeoutError, OSError):
        raise FileDownloadError("The file could not be downloaded from Slack in time; try again.") from None
    if len(content) > MAX_FILE_BYTES:
        raise FileDownloadError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it.")
    return content
