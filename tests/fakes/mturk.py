"""A fake MTurk Requester API that a real boto3 client talks to over HTTP.

It owns the wire protocol (JSON 1.1 with a fully verified SigV4 signature), the qualification state of one
requester account, the error bodies MTurk sends, and the faults a test can inject (scripted or random
failures, latency, a request-rate limit). Only the operations grant-qual uses are served.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from tests.fakes._http import FakeHttpServer, HttpRequest, HttpResponse, json_response

TARGET_PREFIX = "MTurkRequesterServiceV20170117."
REGION = "us-east-1"
SIGNING_NAME = "mturk-requester"
WORKER_ID = re.compile(r"A[A-Z0-9]+")
QUALIFICATION_TYPE_ID = re.compile(r"[A-Z0-9]+")
# DropBeforeGrant closes the connection without an answer and without granting (it never reached MTurk).
FAULTS = ("ServiceFault", "ThrottlingException", "DropBeforeGrant")
# Faults after the grant is applied, so the caller cannot know it landed: the connection is closed without an
# answer, or the answer comes only after `slow_answer_seconds` (past a client's read timeout).
AFTER_GRANT_FAULTS = ("DropAfterGrant", "SlowAnswerAfterGrant")

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class Grant:
    """One successful AssociateQualificationWithWorker call, with MTurk's defaults filled in.

    ``granted_at`` (epoch seconds) is left out of comparisons, so tests can compare grants by content.
    """

    qualification_type_id: str
    worker_id: str
    integer_value: int
    send_notification: bool
    granted_at: float = field(default_factory=time.time, compare=False, repr=False)


@dataclass(frozen=True)
class Revoke:
    """One successful DisassociateQualificationFromWorker call; ``reason`` is what the worker was sent (None: the
    call had no Reason, so MTurk notified nobody)."""

    qualification_type_id: str
    worker_id: str
    reason: str | None


class _Rejected(Exception):
    """Ends the handling of a request with an MTurk error answer."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.body.decode())
        self.response = response


class FakeMTurk(FakeHttpServer):
    """The MTurk Requester API of one account, served on 127.0.0.1.

    Tests set state and faults through the public attributes; ``lock`` guards them while the server runs.
    """

    ACCESS_KEY = "AKIAFAKEMTURK0000001"
    SECRET_KEY = "fake/mturk/secret/key/0000000000000000000"
    # MTurk's answer for a type owned by someone else is not documented and was not observed; the app
    # should rely on "__type": "RequestError" and the message, not on this code.
    NOT_OWNED_TURK_CODE = "AWS.MechanicalTurk.QualificationTypeNotOwned"

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.owned_types: dict[str, str] = {}
        self.foreign_types: dict[str, str] = {}
        self.unknown_workers: set[str] = set()
        self.grants: list[Grant] = []
        self.revokes: list[Revoke] = []  # DisassociateQualificationFromWorker calls that took effect
        # (type, worker) whose qualification is revoked: MTurk keeps it with Status "Revoked" until granted again.
        self.revoked: set[tuple[str, str]] = set()
        # Qualifications a worker already held before the test began (see preset_grant); not calls.
        self.preset: list[Grant] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.service_fault_status = 500
        # What GetAccountBalance answers: the sandbox always has $10,000.00.
        self.available_balance = "10000.00"
        self.latency = 0.0
        self.slow_answer_seconds = 2.0  # how late SlowAnswerAfterGrant answers
        # (probability, seconds): some calls are slow, as MTurk's are under load.
        self.random_slow: tuple[float, float] = (0.0, 0.0)
        self.throttle_above_tps: float | None = None
        # Whether reads (GetQualificationScore, ListWorkersWithQualificationType) count against that rate too.
        self.throttle_reads = False
        self.random_faults: dict[str, float] = {}
        self.random = random.Random(seed)
        self.injected_faults: collections.Counter[str] = collections.Counter()
        self.throttled_at: list[float] = []  # time.time() of each ThrottlingException the rate rule answered
        self._scripted: list[list[Any]] = []  # [error, remaining, worker_id or None]
        self._accepted_at: collections.deque[float] = collections.deque()
        self._type_details: dict[str, dict[str, Any]] = {}
        self._started_at = time.time()
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "AssociateQualificationWithWorker": self._associate_qualification_with_worker,
            "DisassociateQualificationFromWorker": self._disassociate_qualification_from_worker,
            "GetQualificationScore": self._get_qualification_score,
            "GetQualificationType": self._get_qualification_type,
            "ListQualificationTypes": self._list_qualification_types,
            "ListWorkersWithQualificationType": self._list_workers_with_qualification_type,
            "GetAccountBalance": self._get_account_balance,
        }

    # ------------------------------------------------------------------ state helpers for tests

    def add_type(
        self,
        type_id: str,
        name: str,
        *,
        description: str = "",
        keywords: str = "",
        owned: bool = True,
        requestable: bool = True,
    ) -> None:
        """Create a qualification type; ``owned=False`` makes it another requester's type."""
        if not QUALIFICATION_TYPE_ID.fullmatch(type_id) or len(type_id) > 64:
            raise ValueError(f"{type_id!r} is not a qualification type ID MTurk would issue")
        with self.lock:
            (self.owned_types if owned else self.foreign_types)[type_id] = name
            self._type_details[type_id] = {
                "Description": description or f"{name} (fake)",
                "IsRequestable": requestable,
                "CreationTime": time.time(),
                "Keywords": keywords,
            }

    def preset_grant(
        self, qualification_type_id: str, worker_id: str, value: int = 1, *, granted_at: float | None = None
    ) -> Grant:
        """Make the worker hold the qualification already, as after a grant that reached MTurk before a crash.

        The grant goes into ``preset``, not ``grants``: it is no call the app made, but current_value and
        GetQualificationScore see it. The type must be one of the account's own (see add_type).
        """
        if qualification_type_id not in self.owned_types:
            raise ValueError(f"{qualification_type_id!r} is not a type this account owns; add_type it first")
        if not WORKER_ID.fullmatch(worker_id) or len(worker_id) > 64:
            raise ValueError(f"{worker_id!r} is not a worker ID MTurk would issue")
        grant = Grant(qualification_type_id, worker_id, value, False, time.time() if granted_at is None else granted_at)
        with self.lock:
            self.preset.append(grant)
        return grant

    def revoke(self, qualification_type_id: str, worker_id: str) -> None:
        """Revoke a worker's qualification, as on the requester site: MTurk then lists it with Status Revoked."""
        if self.current_grant(qualification_type_id, worker_id) is None:
            raise ValueError(f"{worker_id} does not hold {qualification_type_id}")
        with self.lock:
            self.revoked.add((qualification_type_id, worker_id))

    def fail_next(self, error: str, times: int = 1, worker_id: str | None = None) -> None:
        """Answer the next ``times`` associate or disassociate calls (for ``worker_id`` only, if given) with ``error``.

        An error of AFTER_GRANT_FAULTS grants first, then drops the connection or answers too late.
        """
        if error not in FAULTS + AFTER_GRANT_FAULTS:
            raise ValueError(f"unknown fault {error!r}; choose from {FAULTS + AFTER_GRANT_FAULTS}")
        with self.lock:
            self._scripted.append([error, times, worker_id])

    def grants_for(self, worker_id: str) -> list[Grant]:
        with self.lock:
            return [grant for grant in self.grants if grant.worker_id == worker_id]

    def grant_counts(self) -> collections.Counter[str]:
        """Successful associate calls per worker ID; a count above 1 means a duplicate grant."""
        with self.lock:
            return collections.Counter(grant.worker_id for grant in self.grants)

    def revoke_counts(self) -> collections.Counter[str]:
        """Successful disassociate calls per worker ID; a count above 1 means a duplicate revoke."""
        with self.lock:
            return collections.Counter(revoke.worker_id for revoke in self.revokes)

    def holds(self, qualification_type_id: str, worker_id: str) -> int | None:
        """The worker's score if they hold the qualification now (Granted), else None (never had it, or Revoked)."""
        grant = self.current_grant(qualification_type_id, worker_id)
        with self.lock:
            if grant is None or (qualification_type_id, worker_id) in self.revoked:
                return None
        return grant.integer_value

    def current_value(self, qualification_type_id: str, worker_id: str) -> int | None:
        """The worker's score as MTurk would hold it: associating again overwrites the value."""
        grant = self.current_grant(qualification_type_id, worker_id)
        return grant.integer_value if grant is not None else None

    def current_grant(self, qualification_type_id: str, worker_id: str) -> Grant | None:
        """The latest grant, preset or made through the API, that gives the worker the qualification now."""
        with self.lock:
            held = [
                grant
                for grant in (*self.preset, *self.grants)
                if grant.worker_id == worker_id and grant.qualification_type_id == qualification_type_id
            ]
        # A stable sort, so at equal times the later call wins, and a call made through the API wins over a preset.
        return sorted(held, key=lambda grant: grant.granted_at)[-1] if held else None

    def calls(self, operation: str) -> list[dict[str, Any]]:
        """Parameters of every authenticated request for ``operation``, including failed ones."""
        with self.lock:
            return [params for name, params in self.requests if name == operation]

    # ------------------------------------------------------------------ protocol

    def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            self._authenticate(request)
            operation = self._operation_name(request)
            params = self._parse_body(request)
            with self.lock:
                self.requests.append((operation, params))
            run = self._operations.get(operation)
            if run is None:
                raise _Rejected(_error(400, "UnknownOperationException"))
            return json_response(run(params), headers=_request_id())
        except _Rejected as rejected:
            return rejected.response

    def _authenticate(self, request: HttpRequest) -> None:
        authorization = request.headers.get("authorization")
        if not authorization:
            raise _Rejected(_error(400, "MissingAuthenticationTokenException", "Missing Authentication Token"))
        match = _AUTHORIZATION.fullmatch(authorization.strip())
        if match is None:
            raise _Rejected(
                _error(400, "IncompleteSignatureException", f"Authorization header is malformed: {authorization}")
            )
        if match["key"] != self.ACCESS_KEY:
            raise _Rejected(
                _error(
                    400,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                )
            )
        if (match["region"], match["service"]) != (REGION, SIGNING_NAME):
            raise _Rejected(
                _error(
                    400,
                    "InvalidSignatureException",
                    f"Credential should be scoped to a valid region and service, not "
                    f"'{match['region']}/{match['service']}'.",
                )
            )
        amz_date = request.headers.get("x-amz-date", "")
        if not amz_date.startswith(match["date"]):
            raise _Rejected(
                _error(
                    400,
                    "InvalidSignatureException",
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
                )
            )
        signed_headers = match["signed"].split(";")
        if "host" not in signed_headers or any(name not in request.headers for name in signed_headers):
            raise _Rejected(_error(400, "IncompleteSignatureException", "Signed headers are incomplete."))
        expected = sigv4_signature(request, signed_headers, amz_date, self.SECRET_KEY)
        if not hmac.compare_digest(expected, match["signature"]):
            raise _Rejected(
                _error(
                    400,
                    "InvalidSignatureException",
                    "The request signature we calculated does not match the signature you provided.",
                )
            )

    def _operation_name(self, request: HttpRequest) -> str:
        target = request.headers.get("x-amz-target", "")
        if request.method != "POST" or request.path != "/" or not target.startswith(TARGET_PREFIX):
            raise _Rejected(_error(400, "UnknownOperationException"))
        # The fake's choice: the real service's answer to a wrong media type was not observed.
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/x-amz-json-1.1":
            raise _Rejected(_error(400, "SerializationException", "Content-Type must be application/x-amz-json-1.1"))
        return target.removeprefix(TARGET_PREFIX)

    @staticmethod
    def _parse_body(request: HttpRequest) -> dict[str, Any]:
        try:
            params = json.loads(request.body or b"{}")
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise _Rejected(_error(400, "SerializationException", "Request body is not a JSON object"))
        return params

    # ------------------------------------------------------------------ operations

    def _associate_qualification_with_worker(self, params: dict[str, Any]) -> dict[str, Any]:
        self._admit_by_rate()
        if self.latency > 0:
            time.sleep(self.latency)
        probability, seconds = self.random_slow
        if probability and self.random.random() < probability:
            with self.lock:
                self.injected_faults["slow"] += 1
            time.sleep(seconds)
        after_grant = self._inject_fault(params.get("WorkerId"))
        type_id = _require_id(params, "QualificationTypeId", QUALIFICATION_TYPE_ID)
        worker_id = _require_id(params, "WorkerId", WORKER_ID)
        integer_value = params.get("IntegerValue", 1)
        if not isinstance(integer_value, int) or isinstance(integer_value, bool):
            raise _Rejected(_parameter_error(integer_value, "IntegerValue"))
        send_notification = params.get("SendNotification", True)
        if not isinstance(send_notification, bool):
            raise _Rejected(_parameter_error(send_notification, "SendNotification"))
        with self.lock:
            self._require_owned(type_id)
            if worker_id in self.unknown_workers:
                raise _Rejected(_parameter_error(worker_id, "WorkerId"))
            self.grants.append(Grant(type_id, worker_id, integer_value, send_notification))
            self.revoked.discard((type_id, worker_id))
        if after_grant == "DropAfterGrant":
            raise _Rejected(HttpResponse(drop=True))
        if after_grant == "SlowAnswerAfterGrant":
            time.sleep(self.slow_answer_seconds)
        return {}

    def _disassociate_qualification_from_worker(self, params: dict[str, Any]) -> dict[str, Any]:
        """As MTurk: the worker's qualification becomes Revoked; Reason (optional) is what the worker is sent. A
        worker who does not hold it (never had it, or had it revoked) gets a RequestError."""
        self._admit_by_rate()
        if self.latency > 0:
            time.sleep(self.latency)
        after_call = self._inject_fault(params.get("WorkerId"))
        type_id = _require_id(params, "QualificationTypeId", QUALIFICATION_TYPE_ID)
        worker_id = _require_id(params, "WorkerId", WORKER_ID)
        reason = params.get("Reason")
        if reason is not None and not isinstance(reason, str):
            raise _Rejected(_parameter_error(reason, "Reason"))
        with self.lock:
            self._require_owned(type_id)
            if worker_id in self.unknown_workers:
                raise _Rejected(_parameter_error(worker_id, "WorkerId"))
            if self.holds(type_id, worker_id) is None:
                raise _Rejected(_does_not_exist())
            self.revoked.add((type_id, worker_id))
            self.revokes.append(Revoke(type_id, worker_id, reason))
        if after_call == "DropAfterGrant":
            raise _Rejected(HttpResponse(drop=True))
        if after_call == "SlowAnswerAfterGrant":
            time.sleep(self.slow_answer_seconds)
        return {}

    def _get_qualification_score(self, params: dict[str, Any]) -> dict[str, Any]:
        # Reads are not subject to the faults injected into grants; only latency applies (and, if asked, the rate).
        if self.throttle_reads:
            self._admit_by_rate()
        if self.latency > 0:
            time.sleep(self.latency)
        type_id = _require_id(params, "QualificationTypeId", QUALIFICATION_TYPE_ID)
        worker_id = _require_id(params, "WorkerId", WORKER_ID)
        with self.lock:
            # Only the owner of a type may read workers' scores for it.
            self._require_owned(type_id)
            if worker_id in self.unknown_workers:
                raise _Rejected(_parameter_error(worker_id, "WorkerId"))
            grant = self.current_grant(type_id, worker_id)
        if grant is None:
            raise _Rejected(_does_not_exist())
        return {"Qualification": self._qualification(grant)}

    def _qualification(self, grant: Grant) -> dict[str, Any]:
        """A Qualification as MTurk describes one (GetQualificationScore, ListWorkersWithQualificationType)."""
        revoked = (grant.qualification_type_id, grant.worker_id) in self.revoked
        return {
            "QualificationTypeId": grant.qualification_type_id,
            "WorkerId": grant.worker_id,
            "GrantTime": grant.granted_at,
            "IntegerValue": grant.integer_value,
            "Status": "Revoked" if revoked else "Granted",
        }

    def _list_workers_with_qualification_type(self, params: dict[str, Any]) -> dict[str, Any]:
        """The type's holders with the given Status (both without one), oldest grant first, a page at a time."""
        if self.throttle_reads:
            self._admit_by_rate()
        if self.latency > 0:
            time.sleep(self.latency)
        type_id = _require_id(params, "QualificationTypeId", QUALIFICATION_TYPE_ID)
        status = params.get("Status")
        if status is not None and status not in ("Granted", "Revoked"):
            raise _Rejected(_parameter_error(status, "Status"))
        max_results = params.get("MaxResults", 10)
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 100:
            raise _Rejected(_parameter_error(max_results, "MaxResults"))
        offset = _decode_token(params.get("NextToken"))
        with self.lock:
            self._require_owned(type_id)
            latest: dict[str, Grant] = {}
            # As current_grant, for every worker at once: the latest grant wins, one made through the API at a tie.
            for grant in sorted((*self.preset, *self.grants), key=lambda grant: grant.granted_at):
                if grant.qualification_type_id == type_id:
                    latest[grant.worker_id] = grant
            listed = [self._qualification(grant) for grant in latest.values()]
        listed.sort(key=lambda qualification: qualification["GrantTime"])
        matching = [q for q in listed if status is None or q["Status"] == status]
        page = matching[offset : offset + max_results]
        answer: dict[str, Any] = {"NumResults": len(page), "Qualifications": page}
        if offset + max_results < len(matching):
            answer["NextToken"] = _encode_token(offset + max_results)
        return answer

    def _get_qualification_type(self, params: dict[str, Any]) -> dict[str, Any]:
        type_id = _require_id(params, "QualificationTypeId", QUALIFICATION_TYPE_ID)
        with self.lock:
            if type_id not in self.owned_types and type_id not in self.foreign_types:
                raise _Rejected(_does_not_exist())
            # Any requester may read any type: qualification types are public on MTurk.
            return {"QualificationType": self._describe(type_id)}

    def _list_qualification_types(self, params: dict[str, Any]) -> dict[str, Any]:
        must_be_requestable = params.get("MustBeRequestable")
        if not isinstance(must_be_requestable, bool):
            raise _Rejected(_parameter_error(must_be_requestable, "MustBeRequestable"))
        max_results = params.get("MaxResults", 10)
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 100:
            raise _Rejected(_parameter_error(max_results, "MaxResults"))
        offset = _decode_token(params.get("NextToken"))
        query = str(params.get("Query", "")).lower()
        with self.lock:
            type_ids = list(self.owned_types)
            if not params.get("MustBeOwnedByCaller", False):
                type_ids += [type_id for type_id in self.foreign_types if type_id not in self.owned_types]
            described = [self._describe(type_id) for type_id in type_ids]
        matching = [
            qualification_type
            for qualification_type in described
            if (not must_be_requestable or qualification_type["IsRequestable"])
            and any(query in qualification_type.get(key, "").lower() for key in ("Name", "Description", "Keywords"))
        ]
        page = matching[offset : offset + max_results]
        answer: dict[str, Any] = {"NumResults": len(page), "QualificationTypes": page}
        if offset + max_results < len(matching):
            answer["NextToken"] = _encode_token(offset + max_results)
        return answer

    def _get_account_balance(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"AvailableBalance": self.available_balance}

    def _describe(self, type_id: str) -> dict[str, Any]:
        name = self.owned_types[type_id] if type_id in self.owned_types else self.foreign_types[type_id]
        details = self._type_details.get(type_id, {})
        return {
            "QualificationTypeId": type_id,
            "CreationTime": details.get("CreationTime", self._started_at),
            "Name": name,
            "Description": details.get("Description", f"{name} (fake)"),
            "QualificationTypeStatus": "Active",
            "IsRequestable": details.get("IsRequestable", True),
            "AutoGranted": False,
            # MTurk leaves out what the type was created without.
            **({"Keywords": details["Keywords"]} if details.get("Keywords") else {}),
        }

    def _require_owned(self, type_id: str) -> None:
        if type_id in self.owned_types:
            return
        if type_id in self.foreign_types:
            raise _Rejected(
                _request_error(f"You do not own the Qualification type {type_id}.", self.NOT_OWNED_TURK_CODE)
            )
        raise _Rejected(_does_not_exist())

    # ------------------------------------------------------------------ fault injection

    def _admit_by_rate(self) -> None:
        if self.throttle_above_tps is None:
            return
        now = time.monotonic()
        with self.lock:
            while self._accepted_at and self._accepted_at[0] <= now - 1.0:
                self._accepted_at.popleft()
            # At most throttle_above_tps calls are accepted in any trailing second.
            if len(self._accepted_at) >= self.throttle_above_tps:
                self.injected_faults["ThrottlingException"] += 1
                self.throttled_at.append(time.time())
                raise _Rejected(self._fault("ThrottlingException"))
            self._accepted_at.append(now)

    def _inject_fault(self, worker_id: Any) -> str | None:
        """Raise the scripted or random error due for this call; an after-grant fault is returned instead."""
        with self.lock:
            for entry in self._scripted:
                error, _, only_for = entry
                if only_for is None or only_for == worker_id:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        self._scripted.remove(entry)
                    break
            else:
                # Sorted so a seed gives the same faults whatever order the dict was filled in.
                error = next((name for name, p in sorted(self.random_faults.items()) if self.random.random() < p), None)
            if error is None:
                return None
            self.injected_faults[error] += 1
            if error in AFTER_GRANT_FAULTS:
                return error
            raise _Rejected(self._fault(error))

    def _fault(self, error: str) -> HttpResponse:
        if error == "DropBeforeGrant":
            return HttpResponse(drop=True)
        if error == "ThrottlingException":
            return _error(400, "ThrottlingException", "Rate exceeded")
        if error == "ServiceFault":
            return json_response(
                {
                    "__type": "ServiceFault",
                    "Message": "We encountered an unexpected error. Please try again.",
                    "TurkErrorCode": "AWS.MechanicalTurk.ServiceFault",
                },
                self.service_fault_status,
                _request_id(),
            )
        raise ValueError(f"unknown fault {error!r}; choose from {FAULTS}")


# ---------------------------------------------------------------------- SigV4


def sigv4_signature(request: HttpRequest, signed_headers: list[str], amz_date: str, secret_key: str) -> str:
    """The signature AWS would compute for ``request``, written from the SigV4 specification."""
    canonical_headers = "".join(
        f"{name}:{' '.join(request.headers[name].split())}\n" for name in sorted(signed_headers)
    )
    canonical_query = "&".join(
        sorted(
            f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}"
            for key, value in parse_qsl(request.query_string, keep_blank_values=True)
        )
    )
    canonical_request = "\n".join(
        [
            request.method,
            quote(request.path or "/", safe="/-_.~"),
            canonical_query,
            canonical_headers,
            ";".join(sorted(signed_headers)),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    date = amz_date[:8]
    scope = f"{date}/{REGION}/{SIGNING_NAME}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (date, REGION, SIGNING_NAME, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------- error bodies


def _request_id() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def _error(status: int, error_type: str, message: str | None = None) -> HttpResponse:
    # AWS's own front-end errors spell the key "message"; MTurk's service errors spell it "Message".
    body: dict[str, str] = {"__type": error_type}
    if message is not None:
        body["message"] = message
    return json_response(body, status, _request_id())


def _request_error(text: str, turk_error_code: str) -> HttpResponse:
    return json_response(
        {
            "__type": "RequestError",
            "Message": f"{text} ({int(time.time() * 1000)})",
            "TurkErrorCode": turk_error_code,
        },
        400,
        _request_id(),
    )


def _does_not_exist() -> HttpResponse:
    return _request_error(
        "You requested a Qualification that does not exist.", "AWS.MechanicalTurk.QualificationDoesNotExist"
    )


def _parameter_error(value: Any, parameter: str) -> HttpResponse:
    return json_response(
        {
            "__type": "ParameterValidationError",
            "Message": f'The value "{value}" is not valid for the parameter {parameter}.',
        },
        400,
        _request_id(),
    )


def _require_id(params: dict[str, Any], parameter: str, pattern: re.Pattern[str]) -> str:
    value = params.get(parameter)
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not pattern.fullmatch(value):
        raise _Rejected(_parameter_error(value, parameter))
    return value


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: Any) -> int:
    if token is None:
        return 0
    try:
        prefix, _, offset = base64.urlsafe_b64decode(str(token)).decode().partition(":")
        if prefix == "offset" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise _Rejected(_parameter_error(token, "NextToken"))
