"""The MTurk gateway: the boto3 client, retries, and what each MTurk answer means for one worker.

Knows nothing of Slack. `grant` never raises for a worker-level failure: it returns a WorkerOutcome in
MTurk's own words plus a hint. Problems that no worker can get past (missing or rejected credentials) raise
MTurkAccessError so the executor can stop calling MTurk for the rest of the request.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from bot.config import MTurkEnvironment, Settings
from bot.requests import WorkerOutcome, WorkerStatus, WorkerTarget

log = logging.getLogger(__name__)

REGION = "us-east-1"
TRANSIENT_CODES = frozenset(
    {
        "ServiceFault",
        "ThrottlingException",
        "Throttling",
        "ServiceUnavailable",
        "InternalFailure",
        "RequestTimeout",
    }
)
THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
ACCESS_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "AccessDenied",
    }
)


class MTurkAccessError(Exception):
    """MTurk cannot be used at all with these credentials; the message says what to fix."""


class MTurkUnavailable(Exception):
    """MTurk did not answer a lookup in time; the request can be tried again."""


@dataclass(frozen=True)
class QualificationTypeInfo:
    qualification_type_id: str
    name: str
    status: str


@dataclass(frozen=True)
class AccountBalance:
    """What GetAccountBalance answered, and who answered it (the sandbox always has $10,000.00)."""

    available: Decimal
    environment: MTurkEnvironment
    endpoint_url: str


class CallPacer(Protocol):
    """Paces calls to MTurk: waits for a slot before a call and learns from throttling."""

    def acquire(self) -> None: ...

    def on_success(self) -> None: ...

    def on_throttle(self) -> None: ...


class UnpacedCalls:
    def acquire(self) -> None:
        pass

    def on_success(self) -> None:
        pass

    def on_throttle(self) -> None:
        pass


def create_mturk_client(
    settings: Settings, *, max_pool_connections: int | None = None, max_attempts: int = 4, read_timeout: float = 20
) -> BaseClient:
    """A boto3 MTurk client; credentials from boto3's standard chain, endpoint by MTURK_ENV or override."""
    config = Config(
        region_name=REGION,
        # botocore's default is "legacy"; standard mode retries 5xx, throttling and dropped connections.
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections or max(10, settings.mturk_max_concurrency),
        connect_timeout=5,
        read_timeout=read_timeout,
    )
    return boto3.client("mturk", region_name=REGION, endpoint_url=settings.mturk_endpoint_url, config=config)


class MTurkGateway:
    """AssociateQualificationWithWorker per worker, and the lookups that validate a request."""

    def __init__(
        self,
        client: BaseClient,
        environment: MTurkEnvironment,
        *,
        pacer: CallPacer | None = None,
        transient_attempts: int = 6,
        backoff_base: float = 0.5,
    ) -> None:
        self.client = client
        self.environment = environment
        self.pacer = pacer or UnpacedCalls()
        self._transient_attempts = transient_attempts
        self._backoff_base = backoff_base
        self._types_lock = threading.Lock()
        self._owned_types: dict[str, QualificationTypeInfo] = {}
        self._owned_types_at = 0.0
        # Pace every HTTP attempt, botocore's own retries included, and learn from every answer.
        events = client.meta.events
        events.register("before-send.mturk.AssociateQualificationWithWorker", self._before_send)
        events.register("needs-retry.mturk.AssociateQualificationWithWorker", self._after_attempt)

    def _before_send(self, **_: Any) -> None:
        self.pacer.acquire()

    def _after_attempt(self, response: Any = None, **_: Any) -> None:
        if not response:
            return
        http_response, parsed = response
        if http_response.status_code == 200:
            self.pacer.on_success()
        elif parsed.get("Error", {}).get("Code") in THROTTLE_CODES:
            self.pacer.on_throttle()

    def grant(self, target: WorkerTarget, qualification_type_id: str, send_notification: bool) -> WorkerOutcome:
        """Grant one worker, retrying transient failures with backoff; returns what happened."""
        params: dict[str, Any] = {
            "QualificationTypeId": qualification_type_id,
            "WorkerId": target.worker_id,
            "SendNotification": send_notification,
        }
        if target.integer_value is not None:
            params["IntegerValue"] = target.integer_value
        last: WorkerOutcome | None = None
        for attempt in range(self._transient_attempts):
            if attempt:
                time.sleep(self._backoff_base * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
            last = self._grant_once(target, params)
            if last is not None and last.status is not WorkerStatus.PENDING:
                return last
        assert last is not None
        return WorkerOutcome(
            target.worker_id,
            target.integer_value,
            WorkerStatus.FAILED,
            last.error_code,
            last.error_message,
            f"MTurk kept failing after {self._transient_attempts} attempts; nothing was granted to this worker. "
            "Try again later.",
        )

    def _grant_once(self, target: WorkerTarget, params: dict[str, Any]) -> WorkerOutcome:
        """One call; a PENDING outcome means a transient failure worth another attempt."""
        try:
            self.client.associate_qualification_with_worker(**params)
        except ClientError as error:
            return self._classify(target, error)
        except (NoCredentialsError, PartialCredentialsError):
            raise MTurkAccessError(
                "No AWS credentials were found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) "
                "for the requester account; see the README."
            ) from None
        except (BotoConnectionError, BotoCoreError) as error:
            log.warning("MTurk call for %s failed: %s", target.worker_id, error)
            return WorkerOutcome(
                target.worker_id, target.integer_value, WorkerStatus.PENDING, type(error).__name__, str(error)
            )
        return WorkerOutcome(target.worker_id, target.integer_value, WorkerStatus.GRANTED)

    def _classify(self, target: WorkerTarget, error: ClientError) -> WorkerOutcome:
        code, message, turk_code = _error_fields(error)
        if code in ACCESS_CODES:
            raise MTurkAccessError(f"AWS rejected the credentials ({code}: {message}). Check the AWS keys.")
        status = WorkerStatus.PENDING if code in TRANSIENT_CODES else WorkerStatus.FAILED
        return WorkerOutcome(
            target.worker_id,
            target.integer_value,
            status,
            turk_code or code,
            message,
            self._hint(code, turk_code, message),
        )

    def _hint(self, code: str, turk_code: str | None, message: str) -> str | None:
        env = self.environment.label
        if code == "ParameterValidationError" and "WorkerId" in message:
            if self.environment is MTurkEnvironment.SANDBOX:
                return f"This worker ID is not known in the {env}; was it a production ID?"
            return f"This worker ID is not known in {env}; check it for typos, or was it a sandbox ID?"
        if turk_code and turk_code.endswith("QualificationDoesNotExist"):
            return f"Check the qualification type ID: it must exist in the {env} account these credentials use."
        if (turk_code and "NotOwned" in turk_code) or "not own" in message.lower():
            return "Only qualification types created by this requester account can be granted."
        return None

    def holds(self, target: WorkerTarget, qualification_type_id: str) -> bool:
        """Whether the worker already has the qualification with the target's value (read back after a crash)."""
        try:
            response = self.client.get_qualification_score(
                QualificationTypeId=qualification_type_id, WorkerId=target.worker_id
            )
        except (ClientError, BotoCoreError):
            return False  # not held, or unknown: granting again is safe, it sets the same value
        qualification = response.get("Qualification", {})
        expected = 1 if target.integer_value is None else target.integer_value
        return qualification.get("Status") == "Granted" and qualification.get("IntegerValue") == expected

    def find_owned_type(self, qualification_type_id: str, *, max_age: float = 60.0) -> QualificationTypeInfo | None:
        """The qualification type if this account created it, else None; raises if MTurk cannot say."""
        with self._types_lock:
            fresh = time.monotonic() - self._owned_types_at < max_age
            if not fresh or qualification_type_id not in self._owned_types:
                self._owned_types = self._list_owned_types()
                self._owned_types_at = time.monotonic()
            return self._owned_types.get(qualification_type_id)

    def _list_owned_types(self) -> dict[str, QualificationTypeInfo]:
        found: dict[str, QualificationTypeInfo] = {}
        params: dict[str, Any] = {"MustBeRequestable": False, "MustBeOwnedByCaller": True, "MaxResults": 100}
        try:
            while True:
                page = self.client.list_qualification_types(**params)
                for item in page.get("QualificationTypes", []):
                    info = QualificationTypeInfo(
                        item["QualificationTypeId"],
                        item.get("Name", ""),
                        item.get("QualificationTypeStatus", ""),
                    )
                    found[info.qualification_type_id] = info
                if not page.get("NextToken"):
                    return found
                params["NextToken"] = page["NextToken"]
        except (NoCredentialsError, PartialCredentialsError):
            raise MTurkAccessError(
                "No AWS credentials were found, so the qualification type could not be checked. Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); see the README."
            ) from None
        except ClientError as error:
            code, message, _ = _error_fields(error)
            if code in ACCESS_CODES:
                raise MTurkAccessError(f"AWS rejected the credentials ({code}: {message}).") from None
            raise MTurkUnavailable(f"MTurk answered {code}: {message}") from None
        except (BotoConnectionError, BotoCoreError) as error:
            raise MTurkUnavailable(f"MTurk could not be reached ({type(error).__name__}).") from None

    def account_balance(self) -> AccountBalance:
        """GetAccountBalance: the cheapest call that proves the credentials and which environment answers."""
        try:
            answer = self.client.get_account_balance()
        except (NoCredentialsError, PartialCredentialsError):
            raise MTurkAccessError(
                "No AWS credentials were found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) "
                "for the requester account; see the README."
            ) from None
        except ClientError as error:
            code, message, _ = _error_fields(error)
            if code in ACCESS_CODES:
                raise MTurkAccessError(
                    f"AWS rejected the credentials ({code}: {message}). Check the AWS keys."
                ) from None
            raise MTurkUnavailable(f"MTurk answered {code}: {message}") from None
        except (BotoConnectionError, BotoCoreError) as error:
            raise MTurkUnavailable(f"MTurk could not be reached ({error})") from None
        try:
            available = Decimal(str(answer.get("AvailableBalance", "")))
        except InvalidOperation:
            raise MTurkUnavailable("MTurk answered GetAccountBalance without a balance") from None
        return AccountBalance(available, self.environment, self.client.meta.endpoint_url)


def _error_fields(error: ClientError) -> tuple[str, str, str | None]:
    """(code, message, TurkErrorCode) from a parsed error; modelled fields sit at the top of the response."""
    response: dict[str, Any] = dict(error.response)
    details = response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message") or response.get("Message") or code)
    turk_code = response.get("TurkErrorCode") or details.get("TurkErrorCode")
    return code, message, turk_code
