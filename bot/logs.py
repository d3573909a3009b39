"""Logging set-up; a filter keeps tokens and secrets out of every log line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Shapes of Slack tokens and AWS secrets, in case one arrives inside an error text we did not write.
_TOKEN_SHAPES = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _TOKEN_SHAPES.sub("[redacted]", message)
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "[redacted]")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(secrets: Iterable[str], level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # botocore and urllib3 log request details at DEBUG; keep them at WARNING whatever the level.
    for noisy in ("botocore", "boto3", "urllib3", "slack_sdk", "slack_bolt"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
