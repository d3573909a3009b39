"""The MTurk gateway: the boto3 client, retries, and what each MTurk answer means for one worker.

Knows nothing of Slack. `grant` never raises for a worker-level failure: it returns a WorkerOutcome in
MTurk's own words plus a hint. Problems that no worker can get past (missing or rejected credentials) raise
MTurkAccessError so the executor can stop calling MTurk for the rest of the request.

Retries: botocore's own are off, so the gateway's loop is the only one and its bounds are the totals: a
grant is attempted at most GRANT_ATTEMPTS times, a lookup at most LOOKUP_ATTEMPTS times. A grant call left
without an answer (read timeout, connection dropped after sending) may have landed, so before calling again
the gateway reads the worker's score back, as after a crash: MTurk emails a worker at every call.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from bot.config import MTurkEnvironment, Settings
from bot.requests import OUTCOME_UNKNOWN, Operation, WorkerOutcome, WorkerStatus, WorkerTarget

log = logging.getLogger(__name__)

REGION = "us-east-1"
# Every call to MTurk, in all (first call included): the gateway's loop is the only retry.
GRANT_ATTEMPTS = 6
# Lookups run while a person waits (a form gets 3 seconds to answer), so they give up sooner.
LOOKUP_ATTEMPTS = 3
# Failures before the request left this machine: nothing reached MTurk, so calling again is safe.
NOT_SENT_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)
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
# The caller's own mistakes, answered for one worker or type: an answer, never retried.
CALLER_ERROR_CODES = frozenset({"RequestError", "ParameterValidationError"})
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


# The calls the pacer spaces: grants, and the reads a preview (and a grant's read-back) makes per worker or page.
PACED_OPERATIONS = (
    "AssociateQualificationWithWorker",
    "DisassociateQualificationFromWorker",
    "GetQualificationScore",
    "ListWorkersWithQualificationType",
)
# A revoke MTurk refused because the worker does not hold the qualification: the end state asked for, with a note.
NOT_HELD = "NotHeld"


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


class WorkerNotKnown(Exception):
    """MTurk does not know this worker ID in this environment (ParameterValidationError on WorkerId)."""


@dataclass(frozen=True)
class QualificationScore:
    """One worker's qualification as MTurk holds it: GetQualificationScore's or a holders page's `Qualification`."""

    worker_id: str
    integer_value: int
    status: str  # Granted or Revoked
    granted_at: datetime | None


class CallPacer(Protocol):
    """Paces calls to MTurk: waits for a slot before a call and learns from throttling."""

    def acquire(self, *, again: bool = False) -> None:
        """Wait for a slot; `again`: the call is made again after a throttle (it may go first)."""
        ...

    def on_success(self) -> None: ...

    def on_throttle(self) -> None: ...


class UnpacedCalls:
    def acquire(self, *, again: bool = False) -> None:
        pass

    def on_success(self) -> None:
        pass

    def on_throttle(self) -> None:
        pass


def create_mturk_client(
    settings: Settings, *, max_pool_connections: int | None = None, read_timeout: float = 20.0
) -> BaseClient:
    """A boto3 MTurk client; credentials from boto3's standard chain, the endpoint chosen by the settings."""
    config = Config(
        region_name=REGION,
        # One attempt per call: botocore would retry a dropped connection blindly (a second grant, a second
        # email to the worker) and multiply the gateway's attempts. MTurkGateway retries instead.
        retries={"mode": "standard", "total_max_attempts": 1},
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
        backoff_base: float = 0.5,
    ) -> None:
        self.client = client
        self.environment = environment
        self.pacer = pacer or UnpacedCalls()
        self._backoff_base = backoff_base
        self._types_lock = threading.Lock()
        self._owned_types: dict[str, QualificationTypeInfo] = {}
        self._owned_types_at = 0.0
        self._throttled_before = threading.local()  # whether this thread's call is one MTurk throttled
        # Pace every HTTP attempt and learn from every answer (botocore fires these for each one).
        # The preview's reads too: a 10,000-worker preview makes hundreds of them, within the same rate as grants.
        events = client.meta.events
        for operation in PACED_OPERATIONS:
            events.register(f"before-send.mturk.{operation}", self._before_send)
            events.register(f"needs-retry.mturk.{operation}", self._after_attempt)

    def _before_send(self, **_: Any) -> None:
        self.pacer.acquire(again=getattr(self._throttled_before, "value", False))

    def _after_attempt(self, response: Any = None, **_: Any) -> None:
        if not response:
            return
        http_response, parsed = response
        if http_response.status_code == 200:
            self.pacer.on_success()
        elif parsed.get("Error", {}).get("Code") in THROTTLE_CODES:
            self.pacer.on_throttle()

    def grant(
        self,
        target: WorkerTarget,
        qualification_type_id: str,
        send_notification: bool,
        *,
        may_have_landed: bool = False,
    ) -> WorkerOutcome:
        """Grant one worker, at most GRANT_ATTEMPTS calls with backoff; returns what happened.

        `may_have_landed`: an earlier call for this worker got no answer (a process died while it was in
        flight). Then, and after any call of ours left without an answer, the worker's score is read back
        before calling again: a worker who holds the target value already is granted, with no second call.
        """
        params: dict[str, Any] = {
            "QualificationTypeId": qualification_type_id,
            "WorkerId": target.worker_id,
            "SendNotification": send_notification,
        }
        if target.integer_value is not None:
            params["IntegerValue"] = target.integer_value
        in_doubt = may_have_landed
        last: WorkerOutcome | None = None
        for attempt in range(GRANT_ATTEMPTS):
            if attempt:
                self._back_off(attempt, after=last)
            if in_doubt:
                held = self._read_back(target, qualification_type_id)
                if held:
                    return WorkerOutcome(target.worker_id, target.integer_value, WorkerStatus.GRANTED)
                if held is None:
                    continue  # MTurk could not say: calling now could grant (and email) twice
                in_doubt = False
            last, in_doubt = self._grant_once(target, params, after=last)
            if last.status is not WorkerStatus.PENDING:
                return last
        if in_doubt and self._read_back(target, qualification_type_id):
            return WorkerOutcome(target.worker_id, target.integer_value, WorkerStatus.GRANTED)
        return self._gave_up(target, last, in_doubt)

    def revoke(
        self, target: WorkerTarget, qualification_type_id: str, reason: str | None, *, may_have_landed: bool = False
    ) -> WorkerOutcome:
        """Revoke one worker's qualification (DisassociateQualificationFromWorker), with grant()'s discipline.

        `reason` is MTurk's Reason: shown to the worker, who is notified only when one is given. After a call
        left without an answer (or `may_have_landed`), the worker is read back first: "does not hold it" or
        Revoked means the revoke landed. MTurk's RequestError for a worker who does not hold it is the end
        state asked for: recorded done, with a note (NOT_HELD), not as a failure.
        """
        params: dict[str, Any] = {"QualificationTypeId": qualification_type_id, "WorkerId": target.worker_id}
        if reason:
            params["Reason"] = reason
        call = self.client.disassociate_qualification_from_worker
        in_doubt = may_have_landed
        last: WorkerOutcome | None = None
        for attempt in range(GRANT_ATTEMPTS):
            if attempt:
                self._back_off(attempt, after=last)
            if in_doubt:
                gone = self._revoked_back(target, qualification_type_id)
                if gone:
                    return _revoked(target)
                if gone is None:
                    continue  # MTurk could not say: calling now could notify the worker twice
                in_doubt = False
            last, in_doubt = self._call_once(target, params, call, after=last)
            if last.status is WorkerStatus.GRANTED:
                return _revoked(target)
            if last.status is WorkerStatus.FAILED:
                if last.error_code and self._revoked_back(target, qualification_type_id):
                    return _revoked(target, last.error_message)
                return replace(last, operation=Operation.REVOKE)
        if in_doubt and self._revoked_back(target, qualification_type_id):
            return _revoked(target)
        return replace(self._gave_up(target, last, in_doubt), operation=Operation.REVOKE)

    def _revoked_back(self, target: WorkerTarget, qualification_type_id: str) -> bool | None:
        """Whether the worker no longer holds the qualification (none, or Revoked); None if MTurk could not say."""
        try:
            score = self.qualification_score(qualification_type_id, target.worker_id)
        except WorkerNotKnown:
            return False  # a wrong ID: the revoke's own error says so
        except MTurkUnavailable:
            return None
        return score is None or score.status == "Revoked"

    def _gave_up(self, target: WorkerTarget, last: WorkerOutcome | None, in_doubt: bool) -> WorkerOutcome:
        if in_doubt:
            hint = (
                "MTurk did not answer whether a grant reached it, so it was not called again (the worker would be "
                "emailed twice). Check the worker's score on the requester site before retrying."
            )
        else:
            hint = (
                f"MTurk kept failing after {GRANT_ATTEMPTS} attempts; nothing was granted to this worker. "
                "Try again later."
            )
        code = OUTCOME_UNKNOWN if in_doubt or last is None else last.error_code
        message = last.error_message if last else "MTurk did not answer whether an earlier call landed."
        return WorkerOutcome(target.worker_id, target.integer_value, WorkerStatus.FAILED, code, message, hint)

    def _back_off(self, attempt: int, *, after: WorkerOutcome | None = None) -> None:
        """Sleep before another attempt: longer each time, with jitter.

        Not after a first throttle while calls are paced: the pacer has just slowed every call down, and it
        gives the retry its slot. A sleep on top only delays that worker, and a throttle near the end of a
        batch (the limiter probing above the limit) kept the batch's result waiting up to 0.75 s for it. A
        throttle again backs off as any failure does, so persistent throttling still spreads the attempts.
        """
        if attempt == 1 and _throttled(after) and not isinstance(self.pacer, UnpacedCalls):
            return
        time.sleep(self._backoff_base * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5))

    def _grant_once(
        self, target: WorkerTarget, params: dict[str, Any], *, after: WorkerOutcome | None = None
    ) -> tuple[WorkerOutcome, bool]:
        return self._call_once(target, params, self.client.associate_qualification_with_worker, after=after)

    def _call_once(
        self, target: WorkerTarget, params: dict[str, Any], call: Any, *, after: WorkerOutcome | None = None
    ) -> tuple[WorkerOutcome, bool]:
        """One call: its outcome (PENDING: worth another attempt; GRANTED: done) and whether it may have landed
        unanswered. `after`: the outcome of the attempt before, if any (a throttled call goes first when paced)."""
        self._throttled_before.value = _throttled(after)
        try:
            call(**params)
        except ClientError as error:
            return self._classify(target, error), False
        except (NoCredentialsError, PartialCredentialsError):
            raise MTurkAccessError(
                "No AWS credentials were found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) "
                "for the requester account; see the README."
            ) from None
        except (BotoConnectionError, BotoCoreError) as error:
            log.warning("MTurk call for %s failed: %s", target.worker_id, error)
            pending = WorkerOutcome(
                target.worker_id, target.integer_value, WorkerStatus.PENDING, type(error).__name__, str(error)
            )
            return pending, _may_have_landed(error)
        finally:
            self._throttled_before.value = False
        return WorkerOutcome(target.worker_id, target.integer_value, WorkerStatus.GRANTED), False

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

    def _read_back(self, target: WorkerTarget, qualification_type_id: str) -> bool | None:
        """Whether the worker holds the qualification with the target's value; None if MTurk could not say."""
        try:
            response = self.client.get_qualification_score(
                QualificationTypeId=qualification_type_id, WorkerId=target.worker_id
            )
        except ClientError as error:
            code, message, _ = _error_fields(error)
            if code in ACCESS_CODES:
                raise MTurkAccessError(
                    f"AWS rejected the credentials ({code}: {message}). Check the AWS keys."
                ) from None
            # Any other answer (no such qualification, no such worker) says the grant did not land.
            return None if code in TRANSIENT_CODES else False
        except (NoCredentialsError, PartialCredentialsError):
            raise MTurkAccessError("No AWS credentials were found; see the README.") from None
        except (BotoConnectionError, BotoCoreError) as error:
            log.warning("reading back %s failed: %s", target.worker_id, error)
            return None
        qualification = response.get("Qualification", {})
        expected = 1 if target.integer_value is None else target.integer_value
        return qualification.get("Status") == "Granted" and qualification.get("IntegerValue") == expected

    def find_owned_type(self, qualification_type_id: str, *, max_age: float = 60.0) -> QualificationTypeInfo | None:
        """The qualification type if this account created it, else None; raises if MTurk cannot say."""
        with self._types_lock:
            fresh = time.monotonic() - self._owned_types_at < max_age
            if not fresh or qualification_type_id not in self._owned_types:
                self._refresh_owned_types()
            return self._owned_types.get(qualification_type_id)

    def owned_types(self, *, max_age: float = 60.0) -> list[QualificationTypeInfo]:
        """Every qualification type this account created (all pages), listed at most `max_age` seconds ago."""
        with self._types_lock:
            if time.monotonic() - self._owned_types_at >= max_age:
                self._refresh_owned_types()
            return list(self._owned_types.values())

    def _refresh_owned_types(self) -> None:
        self._owned_types = self._list_owned_types()
        self._owned_types_at = time.monotonic()

    def _list_owned_types(self) -> dict[str, QualificationTypeInfo]:
        found: dict[str, QualificationTypeInfo] = {}
        params: dict[str, Any] = {"MustBeRequestable": False, "MustBeOwnedByCaller": True, "MaxResults": 100}
        while True:
            page = self._read(self.client.list_qualification_types, params, "the qualification types")
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

    def qualification_score(self, qualification_type_id: str, worker_id: str) -> QualificationScore | None:
        """GetQualificationScore: the worker's score and status, or None when they do not hold it (RequestError).

        Raises WorkerNotKnown for a worker ID MTurk does not know here, and MTurkAccessError / MTurkUnavailable.
        """
        params = {"QualificationTypeId": qualification_type_id, "WorkerId": worker_id}
        try:
            answer = self._read(self.client.get_qualification_score, params, "the score", passed_on=CALLER_ERROR_CODES)
        except ClientError as error:
            code, message, _ = _error_fields(error)
            if code == "ParameterValidationError" and "WorkerId" in message:
                raise WorkerNotKnown(message) from None
            if code == "RequestError":
                return None
            raise MTurkUnavailable(f"MTurk answered {code}: {message}") from None
        return _qualification_score(answer.get("Qualification", {}))

    def holders(self, qualification_type_id: str, status: str = "Granted") -> Iterator[QualificationScore]:
        """ListWorkersWithQualificationType, page by page (100 a page): every worker whose qualification has
        `status` (Granted or Revoked). Pages are read as the caller goes, so any number of holders fits."""
        for page in self.holder_pages(qualification_type_id, status):
            yield from page

    def holder_pages(self, qualification_type_id: str, status: str = "Granted") -> Iterator[list[QualificationScore]]:
        """As holders(), a page (one call) at a time, so a caller can count the calls and stop early."""
        params: dict[str, Any] = {"QualificationTypeId": qualification_type_id, "Status": status, "MaxResults": 100}
        while True:
            page = self._read(self.client.list_workers_with_qualification_type, params, "the workers")
            yield [_qualification_score(item) for item in page.get("Qualifications", [])]
            if not page.get("NextToken"):
                return
            params["NextToken"] = page["NextToken"]

    def _read(
        self, operation: Any, params: dict[str, Any], what: str, *, passed_on: frozenset[str] = frozenset()
    ) -> Any:
        """A lookup with the gateway's retries; its failures as MTurkAccessError or MTurkUnavailable, except the
        ClientErrors whose code is in `passed_on`, which the caller reads as an answer."""
        try:
            return self._look_up(operation, params)
        except (NoCredentialsError, PartialCredentialsError):
            raise MTurkAccessError(
                f"No AWS credentials were found, so {what} could not be read from MTurk. Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); see the README."
            ) from None
        except ClientError as error:
            code, message, _ = _error_fields(error)
            if code in ACCESS_CODES:
                raise MTurkAccessError(f"AWS rejected the credentials ({code}: {message}).") from None
            if code in passed_on:
                raise
            raise MTurkUnavailable(f"MTurk answered {code}: {message}") from None
        except (BotoConnectionError, BotoCoreError) as error:
            raise MTurkUnavailable(f"MTurk could not be reached ({type(error).__name__}).") from None

    def _look_up(self, operation: Any, params: dict[str, Any]) -> Any:
        """A read, retried (it changes nothing) at most LOOKUP_ATTEMPTS times; the last failure is raised."""
        for attempt in range(LOOKUP_ATTEMPTS):
            if attempt:
                self._back_off(attempt)
            try:
                return operation(**params)
            except ClientError as error:
                if attempt == LOOKUP_ATTEMPTS - 1 or _error_fields(error)[0] not in TRANSIENT_CODES:
                    raise
            except (BotoConnectionError, HTTPClientError):
                if attempt == LOOKUP_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

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


def _revoked(target: WorkerTarget, refusal: str | None = None) -> WorkerOutcome:
    """A worker whose revoke is done; `refusal`: MTurk's words when it said the worker did not hold it."""
    if refusal is None:
        return WorkerOutcome(target.worker_id, None, WorkerStatus.GRANTED, operation=Operation.REVOKE)
    return WorkerOutcome(
        target.worker_id,
        None,
        WorkerStatus.GRANTED,
        NOT_HELD,
        refusal,
        "The worker did not hold the qualification when it was revoked; nothing changed for them.",
        Operation.REVOKE,
    )


def _qualification_score(item: dict[str, Any]) -> QualificationScore:
    granted_at = item.get("GrantTime")
    return QualificationScore(
        str(item.get("WorkerId", "")),
        int(item.get("IntegerValue", 1)),
        str(item.get("Status", "")),
        granted_at if isinstance(granted_at, datetime) else None,
    )


def _throttled(outcome: WorkerOutcome | None) -> bool:
    return outcome is not None and outcome.error_code in THROTTLE_CODES


def _may_have_landed(error: Exception) -> bool:
    """Whether a failed call may have reached MTurk and been carried out: it was sent, but no answer came."""
    return isinstance(error, (BotoConnectionError, HTTPClientError)) and not isinstance(error, NOT_SENT_ERRORS)


def _error_fields(error: ClientError) -> tuple[str, str, str | None]:
    """(code, message, TurkErrorCode) from a parsed error; modelled fields sit at the top of the response."""
    response: dict[str, Any] = dict(error.response)
    details = response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message") or response.get("Message") or code)
    turk_code = response.get("TurkErrorCode") or details.get("TurkErrorCode")
    return code, message, turk_code
