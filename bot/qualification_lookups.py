"""Look-ups answered by MTurk: the account's types for a picker, one worker's score, a type's holders.

Plain Python over the gateway and the access policy; nothing of Slack. Requesters and approvers may look
up scores and holders; anyone else gets a NotAllowed. The grant form's picker shows types to requesters
only. Every answer carries the MTurk environment it came from, since type IDs, workers and scores differ
between the sandbox and production.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.config import MTurkEnvironment
from bot.mturk import (
    MTurkAccessError,
    MTurkGateway,
    MTurkUnavailable,
    QualificationScore,
    QualificationTypeInfo,
    WorkerNotKnown,
)
from bot.policy import AccessPolicy
from bot.qualification_types import matching_types, resolve_type
from bot.reports import HOLDER_STATUSES, write_holders_csv
from bot.requests import HoldersLookup, ScoreLookup
from bot.service import NotAllowed

log = logging.getLogger(__name__)
T = TypeVar("T")


class CannotLookUp(Exception):
    """MTurk could not answer now (unreachable, throttled, credentials refused); the message says why."""


@dataclass(frozen=True)
class ScoreAnswer:
    """One worker's qualification: `score` None when they do not hold it; `worker_known` False when MTurk
    does not know the worker ID in this environment."""

    qualification: QualificationTypeInfo
    worker_id: str
    environment: MTurkEnvironment
    score: QualificationScore | None
    worker_known: bool = True


@dataclass(frozen=True)
class HoldersReport:
    """Who holds a type: counts per status, and every holder as CSV (worker, score, status, grant time)."""

    qualification: QualificationTypeInfo
    environment: MTurkEnvironment
    counts: dict[str, int]
    csv: str

    @property
    def holding(self) -> int:
        return self.counts.get("Granted", 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class QualificationLookups:
    """Stateless over the gateway (which caches the account's types briefly) and the policy."""

    def __init__(self, gateway: MTurkGateway, policy: AccessPolicy) -> None:
        self.gateway = gateway
        self.policy = policy

    @property
    def environment(self) -> MTurkEnvironment:
        return self.gateway.environment

    def ensure_may_look_up(self, user_id: str) -> None:
        if refusal := self.policy.lookup_refusal(user_id):
            raise NotAllowed(refusal)

    def types_matching(self, user_id: str, typed: str) -> list[QualificationTypeInfo]:
        """The account's types whose name or ID contains `typed`, best first, for the grant form's picker: none
        for someone who may not request grants, and none (logged) when MTurk cannot say."""
        if self.policy.request_refusal(user_id):
            log.info("type picker: %s may not request grants; no options", user_id)
            return []
        try:
            return matching_types(typed, self.gateway.owned_types())
        except (MTurkAccessError, MTurkUnavailable) as error:
            log.warning("type picker: could not list the qualification types: %s", error)
            return []

    def find_type(self, reference: str) -> QualificationTypeInfo:
        """The account's type of this name, else of this ID; InvalidRequest when none or several match."""
        types = self._mturk(self.gateway.owned_types)
        return resolve_type(reference, types, self.environment.label)

    def score(self, user_id: str, lookup: ScoreLookup) -> ScoreAnswer:
        """GetQualificationScore for one worker, straight from MTurk."""
        self.ensure_may_look_up(user_id)
        qualification = self.find_type(lookup.type_reference)
        type_id, env = qualification.qualification_type_id, self.environment
        try:
            score = self._mturk(lambda: self.gateway.qualification_score(type_id, lookup.worker_id))
        except WorkerNotKnown:
            return ScoreAnswer(qualification, lookup.worker_id, env, None, worker_known=False)
        return ScoreAnswer(qualification, lookup.worker_id, env, score)

    def holders(self, user_id: str, lookup: HoldersLookup) -> HoldersReport:
        """Every worker holding the type (and those it was revoked from), read page by page into a CSV."""
        self.ensure_may_look_up(user_id)
        qualification = self.find_type(lookup.type_reference)
        type_id = qualification.qualification_type_id
        buffer = io.StringIO()

        def read_all() -> dict[str, int]:
            return write_holders_csv(
                ((status, holder) for status in HOLDER_STATUSES for holder in self.gateway.holders(type_id, status)),
                buffer,
            )

        counts = self._mturk(read_all)
        log.info("holders of %s looked up by %s: %s", type_id, user_id, counts)
        return HoldersReport(qualification, self.environment, counts, buffer.getvalue())

    def _mturk(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except (MTurkAccessError, MTurkUnavailable) as error:
            raise CannotLookUp(f"MTurk could not answer: {error}") from None
