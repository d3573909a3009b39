"""Uploading a file to a channel, thread or DM: the app's one way of sharing a file in Slack.

Slack's external upload in three steps: `files.getUploadURLExternal` with the length in bytes, the bytes POSTed
to the URL it gives, then `files.completeUploadExternal` to share the file. The bytes are streamed from a file
object in blocks, so a large file (an export written to a temporary file on disk) never sits whole in memory;
slack_sdk's files_upload_v2 reads the whole file first. The upload URL is Slack's own and needs no token.
"""

from __future__ import annotations

import io
import os
import urllib.request
from typing import BinaryIO

from slack_sdk import WebClient


def upload_text(
    client: WebClient,
    *,
    channel: str,
    filename: str,
    content: str,
    initial_comment: str,
    thread_ts: str | None = None,
) -> str:
    """Upload `content` (UTF-8) as `filename`; the file's ID."""
    return upload_file(
        client,
        channel=channel,
        filename=filename,
        file=io.BytesIO(content.encode()),
        initial_comment=initial_comment,
        thread_ts=thread_ts,
    )


def upload_file(
    client: WebClient,
    *,
    channel: str,
    filename: str,
    file: BinaryIO,
    initial_comment: str,
    thread_ts: str | None = None,
) -> str:
    """Upload what `file` holds, from its start, as `filename` into `channel` (a thread of it if `thread_ts`)."""
    length = file.seek(0, os.SEEK_END)
    file.seek(0)
    ticket = client.files_getUploadURLExternal(filename=filename, length=length)
    _send_bytes(client, str(ticket["upload_url"]), file, length)
    file_id = str(ticket["file_id"])
    client.files_completeUploadExternal(
        files=[{"id": file_id, "title": filename}],
        channel_id=channel,
        thread_ts=thread_ts,
        initial_comment=initial_comment,
    )
    return file_id


def _send_bytes(client: WebClient, url: str, file: BinaryIO, length: int) -> None:
    """POST the file to Slack's upload URL; given a file and its Content-Length, http.client sends it in blocks."""
    request = urllib.request.Request(
        url,
        data=file,
        method="POST",
        headers={"Content-Length": str(length), "Content-Type": "application/octet-stream"},
    )
    handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=client.ssl)]
    if client.proxy:
        handlers.append(urllib.request.ProxyHandler({"http": client.proxy, "https": client.proxy}))
    with urllib.request.build_opener(*handlers).open(request, timeout=client.timeout) as response:
        response.read()
