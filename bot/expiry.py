"""Grants that expire: the sweep that revokes an expired grant, tells its requester a day before, Extend and
Revoke now.

An expired grant is revoked by an expiry request: a new change set linked to the original, stored approved (the
original's approval covered its expiry), whose workers are those the original granted, each recorded as holding
the score it gave them. The executor carries it out like any approved request (lease, rate limiter, crash
recovery, only in the request's own MTurk environment) and its drift check leaves alone a worker whose score moved
since (re-granted by another request). Storing it is one compare-and-swap on the original with its event, so
whichever comes first, a replica's sweep or a Revoke now click, stores it once. Time comes from an injected
clock. A process sweeps only its own environment's grants: the other environment's are left to theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.executor import GrantExecutor
from bot.periodic import PeriodicSweep
from bot.policy import AccessPolicy
from bot.requests import Field, GrantRequest, InvalidRequest, RequestState, parse_expiry
from bot.service import ClickOrigin, Decision, DecisionResult, on_approval_message
from bot.store import GrantStore, now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpirySweep:
    """What this sweep did (another replica's work is not listed): expiry requests stored, requesters noticed."""

    expired: list[int]  # the originals whose expiry request this sweep stored
    noticed: list[int]


class GrantExpiry:
    def __init__(
        self,
        store: GrantStore,
        executor: GrantExecutor,
        policy: AccessPolicy,
        *,
        notice_before: timedelta | None,
        clock: Callable[[], datetime] = now,
        interval: float = 60.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.policy = policy
        self.notice_before = notice_before  # None: no notice
        self.clock = clock
        self._env = executor.gateway.environment.value
        self._on_change = on_change  # something new to deliver (wakes the outbox)
        self._periodic = PeriodicSweep(self.sweep, interval=interval, name="expiry-sweeper", what="expiring grants")

    def sweep(self) -> ExpirySweep:
        """Revoke what has expired, then tell the requesters of what expires within the notice period."""
        moment = self.clock()
        expired = []
        for original_id in self.store.due_expiry_ids(moment=moment, mturk_env=self._env):
            if (expiry_id := self.store.start_expiry(original_id, moment=moment, actor_id=None, due=True)) is not None:
                log.info("request #%s expired: revoking as request #%s", original_id, expiry_id)
                self.executor.submit(expiry_id)
                expired.append(original_id)
        noticed = []
        if self.notice_before is not None:
            noticed = self.store.note_expiry_notices(moment=moment, before=self.notice_before, mturk_env=self._env)
        if expired or noticed:
            self._on_change()
        return ExpirySweep(expired, noticed)

    def revoke_now(self, request_id: int, user_id: str, *, origin: ClickOrigin) -> Decision:
        """Expire a grant at once (approvers, from its message): the same expiry request as the sweep, stored once."""
        request = self._expiring(request_id, user_id, origin)
        if isinstance(request, Decision):
            return request
        if refusal := self.executor.other_environment_refusal(request, user_id):
            return Decision(DecisionResult.WRONG_ENVIRONMENT, request, refusal)
        expiry_id = self.store.start_expiry(request_id, moment=self.clock(), actor_id=user_id, due=False)
        if expiry_id is None:
            return _already_expired(self.store.get(request_id) or request)
        log.info("request #%s revoked now by %s as request #%s", request_id, user_id, expiry_id)
        self.executor.submit(expiry_id)
        return Decision(DecisionResult.APPROVED, self.store.get(expiry_id))

    def may_extend(self, request_id: int, user_id: str, *, origin: ClickOrigin) -> Decision | GrantRequest:
        """The grant if `user_id` may extend it from where they clicked, else the Decision that says why not."""
        return self._expiring(request_id, user_id, origin)

    def extend(self, request_id: int, user_id: str, expiry: str) -> Decision:
        """Set a new expiry (a duration from now, or a date); InvalidRequest (Field.EXPIRES) when it cannot be one.

        Only approvers, and only while the grant has not expired (compare-and-swap: a sweep may win)."""
        request = self._expiring(request_id, user_id, None)
        if isinstance(request, Decision):
            return request
        moment = self.clock()
        parsed = parse_expiry(expiry, moment)
        if parsed is None:
            raise InvalidRequest({Field.EXPIRES: "Give the new expiry: 30d, 12h, 8w or a date such as 2027-03-01."})
        expires_at = moment + parsed if isinstance(parsed, timedelta) else parsed
        if not self.store.extend_expiry(request_id, expires_at=expires_at, actor_id=user_id):
            return _already_expired(self.store.get(request_id) or request)
        log.info("request #%s: expiry moved to %s by %s", request_id, expires_at.isoformat(), user_id)
        return Decision(DecisionResult.APPROVED, self.store.get(request_id))

    def _expiring(self, request_id: int, user_id: str, origin: ClickOrigin | None) -> GrantRequest | Decision:
        request = self.store.get(request_id)
        if request is None:
            return Decision(DecisionResult.NOT_FOUND, None, f"Request #{request_id} does not exist.")
        if origin is not None and not on_approval_message(origin, request):
            return Decision(
                DecisionResult.NOT_ON_REQUEST_MESSAGE,
                request,
                f"This button is not on request #{request.id}'s message in the approvals channel; nothing changed.",
            )
        if refusal := self.policy.expiry_refusal(user_id):
            return Decision(DecisionResult.REFUSED, request, refusal)
        if not request.expires or request.state not in (RequestState.DONE, RequestState.FAILED):
            return _already_expired(request)
        return request

    def start(self) -> None:
        """Sweep now (catching up on what came due while no process ran), then every `interval` seconds."""
        self._periodic.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._periodic.stop(timeout)


def _already_expired(request: GrantRequest) -> Decision:
    if request.expiry_request_id is not None:
        text = f"Request #{request.id}'s grant has expired already: revoked as request #{request.expiry_request_id}."
    else:
        text = f"Request #{request.id} is not a finished grant that expires."
    return Decision(DecisionResult.ALREADY_DECIDED, request, text)
