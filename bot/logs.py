"""Logging set-up: text lines or JSON objects (LOG_FORMAT); a filter keeps tokens and secrets out of every log
line, tracebacks and context fields included."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# Shapes of Slack tokens and AWS secrets, in case one arrives inside an error text we did not write.
_TOKEN_SHAPES = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)
_FORMATTER = logging.Formatter()
# Secrets that boto3 reads from the environment itself, so Settings never holds them.
AWS_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# What a log call may say about its context (with `extra=log_context(...)`); JSON lines carry them as fields.
CONTEXT_FIELDS = ("request_id", "user_id", "event")


def log_context(
    *, request_id: int | None = None, user_id: str | None = None, event: str | None = None
) -> dict[str, Any]:
    """`extra` for a log call: the request, the Slack user and what happened, the ones given."""
    given = {"request_id": request_id, "user_id": user_id, "event": event}
    return {name: value for name, value in given.items() if value is not None}


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 6]

    def redact(self, text: str) -> str:
        cleaned = _TOKEN_SHAPES.sub("[redacted]", text)
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "[redacted]")
        return cleaned

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # Tracebacks are formatted later by the handler: format them now, redacted, and keep only that.
        if record.exc_info:
            record.exc_text = self.redact(record.exc_text or _FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context fields given, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is not None:
                line[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(secrets: Iterable[str], level: int = logging.INFO, *, log_format: str = "text") -> None:
    aws_secrets = [os.environ.get(name, "") for name in AWS_SECRET_VARIABLES]
    handler = logging.StreamHandler()
    text_lines = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonLines() if log_format == "json" else text_lines)
    handler.addFilter(RedactSecrets([*secrets, *aws_secrets]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # botocore and urllib3 log request details at DEBUG; keep them at WARNING whatever the level.
    for noisy in ("botocore", "boto3", "urllib3", "slack_sdk", "slack_bolt"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
