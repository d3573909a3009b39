"""Logging set-up; a filter keeps tokens and secrets out of every log line, tracebacks included."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

# Shapes of Slack tokens and AWS secrets, in case one arrives inside an error text we did not write.
_TOKEN_SHAPES = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)
_FORMATTER = logging.Formatter()
# Secrets that boto3 reads from the environment itself, so Settings never holds them.
AWS_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


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
        return True


def configure_logging(secrets: Iterable[str], level: int = logging.INFO) -> None:
    aws_secrets = [os.environ.get(name, "") for name in AWS_SECRET_VARIABLES]
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets([*secrets, *aws_secrets]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # botocore and urllib3 log request details at DEBUG; keep them at WARNING whatever the level.
    for noisy in ("botocore", "boto3", "urllib3", "slack_sdk", "slack_bolt"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
