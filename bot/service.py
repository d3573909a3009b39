"""The use cases: submit a grant request, decide on it, cancel it. Plain Python over the store, gateway and executor.

A decision counts only when it comes from a surface the app rendered for that request (see ClickOrigin): a
button's value names a request, but anyone can send that value from anywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum

from bot.config import MTurkEnvironment
from bot.executor import GrantExecutor
from bot.logs import log_context
from bot.mturk import MTurkAccessError, MTurkGateway, MTurkUnavailable, QualificationTypeInfo
from bot.policy import AccessPolicy
from bot.preview import restoring
from bot.preview_runner import PreviewRunner, ProgressReport
from bot.qualification_types import resolve_type
from bot.requests import Field, GrantRequest, GrantSpec, InvalidRequest, RequestState, WorkerTarget
from bot.store import ApprovalResult, GrantStore

log = logging.getLogger(__name__)


class NotAllowed(Exception):
    """The user may not do this; the message says why."""


class CannotSubmit(Exception):
    """The request is valid but cannot be checked or stored right now; the message says why."""


class DecisionResult(StrEnum):
    APPROVED = "approved"
    APPROVAL_ADDED = "approval_added"  # counted; more approvers are needed before anything runs
    ALREADY_APPROVED = "already_approved"  # this approver's approval was counted before: nothing changed
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    REFUSED = "refused"
    WRONG_ENVIRONMENT = "wrong_environment"  # made in the other MTurk environment: nothing changed
    ALREADY_DECIDED = "already_decided"
    NOT_FOUND = "not_found"
    NOT_ON_REQUEST_MESSAGE = "not_on_request_message"  # clicked somewhere the app did not render the button
    UNDO_REQUESTED = "undo_requested"  # the request undoing it is stored (Decision.request is that new request)


@dataclass(frozen=True)
class Decision:
    result: DecisionResult
    request: GrantRequest | None
    message: str = ""
    approvers: tuple[str, ...] = ()  # whose approvals count so far, after an approval


@dataclass(frozen=True)
class ClickOrigin:
    """Where a button was clicked, as Slack reports it: a message (its channel and ts) or a view (its ID).

    Empty fields mean Slack did not say; such a click matches no surface. `own_home`: the view is this app's
    own Home tab (Slack's signed payload says the view is of type home and belongs to the app it is sent to).
    """

    channel_id: str = ""
    message_ts: str = ""
    view_id: str = ""
    own_home: bool = False

    @classmethod
    def message(cls, channel_id: str, message_ts: str) -> ClickOrigin:
        return cls(channel_id=channel_id, message_ts=message_ts)

    @classmethod
    def view(cls, view_id: str) -> ClickOrigin:
        return cls(view_id=view_id)

    @classmethod
    def home(cls, view_id: str) -> ClickOrigin:
        """A click on the app's own Home tab, which shows the pending requests' Approve and Reject buttons."""
        return cls(view_id=view_id, own_home=True)

    def is_message(self, channel_id: str | None, message_ts: str | None) -> bool:
        """Whether the click came from the message `message_ts` in `channel_id` (both known)."""
        return bool(channel_id and message_ts) and (self.channel_id, self.message_ts) == (channel_id, message_ts)


def on_approval_message(origin: ClickOrigin, request: GrantRequest) -> bool:
    """Approve and Reject count only on the request's own message in the approvals channel."""
    return origin.is_message(request.channel_id, request.message_ts) or _on_own_view(origin, request)


def on_current_summary(origin: ClickOrigin, request: GrantRequest) -> bool:
    """Retry failed counts only on the request's latest result summary, in its thread in the approvals channel."""
    return origin.is_message(request.channel_id, request.summary_ts) or _on_own_view(origin, request)


def _on_own_view(origin: ClickOrigin, request: GrantRequest) -> bool:
    """Whether the click came from a view of the app's own that shows this request's buttons: its Home tab.

    Every Home tab the app publishes shows the buttons of each request it lists, with the same rules (the store's
    compare-and-swap makes a stale Home's click find the request already decided). Any other view counts for
    nothing.
    """
    return origin.own_home and bool(origin.view_id)


class GrantService:
    def __init__(
        self,
        store: GrantStore,
        gateway: MTurkGateway,
        executor: GrantExecutor,
        policy: AccessPolicy,
        previews: PreviewRunner | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.executor = executor
        self.policy = policy
        # Without a preview runner a request is stored pending at once (as before the preview existed).
        self.previews = previews

    def ensure_may_request(self, user_id: str) -> None:
        if refusal := self.policy.request_refusal(user_id):
            raise NotAllowed(refusal)

    def submit(self, user_id: str, spec: GrantSpec) -> GrantRequest:
        """Store a request after checking who asks and that the qualification type is theirs to grant.

        With a preview runner the request is stored previewing, held by this process: `preview` reads its change
        from MTurk and makes it pending (the caller runs it after Slack's ack: it calls MTurk, maybe for long).
        """
        self.ensure_may_request(user_id)
        if spec.type_name:
            spec = replace(spec, qualification_type_id=self.type_named(spec.type_name).qualification_type_id)
        name = self.qualification_name(spec.qualification_type_id)
        env = self.gateway.environment
        request = self.store.create_request(
            spec,
            requester_id=user_id,
            mturk_env=env.value,
            qualification_name=name,
            approvals_required=self.policy.approvals_needed(env),
            preview_owner=self.previews.owner if self.previews else None,
            lease=self.previews.lease if self.previews else timedelta(seconds=60),
        )
        log.info(
            "request #%s stored: %s workers, type %s",
            request.id,
            request.worker_count,
            request.qualification_type_id,
            extra=log_context(request_id=request.id, user_id=user_id, event="stored"),
        )
        return request

    def preview(self, request: GrantRequest, on_progress: ProgressReport | None = None) -> GrantRequest:
        """Read and record the change of a request `submit` stored, making it pending; the request as it is now."""
        if self.previews is not None and request.state is RequestState.PREVIEWING:
            self.previews.run(request.id, on_progress)
        return self.store.get(request.id) or request

    def type_named(self, name: str) -> QualificationTypeInfo:
        """The account's type of this name (else of this ID); InvalidRequest naming the candidates when several
        types have the name, or suggesting close names when none has."""
        try:
            types = self.gateway.owned_types()
        except (MTurkAccessError, MTurkUnavailable) as error:
            raise CannotSubmit(f"Could not check the qualification type with MTurk: {error}") from None
        return resolve_type(name, types, self.gateway.environment.label)

    def qualification_name(self, qualification_type_id: str) -> str:
        """The name of a qualification type this account created; InvalidRequest if it did not create it."""
        try:
            qualification = self.gateway.find_owned_type(qualification_type_id)
        except (MTurkAccessError, MTurkUnavailable) as error:
            raise CannotSubmit(f"Could not check the qualification type with MTurk: {error}") from None
        if qualification is None:
            raise InvalidRequest(
                {
                    Field.QUALIFICATION_TYPE: f"`{qualification_type_id}` is not a qualification type created by "
                    f"this requester account in the {self.gateway.environment.label}. Check the ID on the "
                    "requester site (Manage → Qualification Types)."
                }
            )
        return qualification.name

    def _decidable(
        self, request_id: int, user_id: str, clicked_on_request: Callable[[GrantRequest], bool]
    ) -> GrantRequest | Decision:
        """The request if `user_id` may decide on it from where they clicked, else the Decision that says why not."""
        request = self.store.get(request_id)
        if request is None:
            return Decision(DecisionResult.NOT_FOUND, None, f"Request #{request_id} does not exist.")
        if not clicked_on_request(request):
            return _off_surface(request, user_id)
        if refusal := self.policy.decision_refusal(user_id, request.requester_id):
            return Decision(DecisionResult.REFUSED, request, refusal)
        return request

    def decide(
        self, request_id: int, user_id: str, *, approve: bool, origin: ClickOrigin, reason: str = ""
    ) -> Decision:
        """Approve or reject a pending request from its message; only the first valid decision takes effect.

        An approval counts once per approver; the one that completes the approvals the request needs approves
        it. A rejection by any approver ends it, whatever approvals it has.
        """
        if approve:
            return self._approve(request_id, user_id, origin)
        if refusal := self.rejection_refusal(request_id, user_id, origin=origin):
            return refusal
        if not self.store.reject(request_id, user_id=user_id, reason=reason):
            return Decision(DecisionResult.ALREADY_DECIDED, self.store.get(request_id))
        context = log_context(request_id=request_id, user_id=user_id, event="rejected")
        log.info("request #%s rejected by %s", request_id, user_id, extra=context)
        return Decision(DecisionResult.REJECTED, self.store.get(request_id))

    def rejection_refusal(self, request_id: int, user_id: str, *, origin: ClickOrigin) -> Decision | None:
        """Why `user_id` may not reject the request from `origin` now (it is not pending, say), or None if they may.

        Checked when Reject is clicked, before asking for the reason, and again when the reason comes back.
        """
        request = self._decidable(request_id, user_id, lambda r: on_approval_message(origin, r))
        if isinstance(request, Decision):
            return request
        if request.state is not RequestState.PENDING:
            return Decision(DecisionResult.ALREADY_DECIDED, request)
        return None

    def _approve(self, request_id: int, user_id: str, origin: ClickOrigin) -> Decision:
        request = self._decidable(request_id, user_id, lambda r: on_approval_message(origin, r))
        if isinstance(request, Decision):
            return request
        if refusal := self.policy.approval_refusal(user_id, request.requester_id, request.approvals_required):
            return Decision(DecisionResult.REFUSED, request, refusal)
        if request.state is RequestState.PENDING and (refusal := self._elsewhere(request, user_id)):
            return refusal  # still pending, so an app in the request's own environment can approve it
        approval = self.store.approve(request_id, user_id=user_id)
        if approval.result is ApprovalResult.NOT_PENDING:
            return Decision(DecisionResult.ALREADY_DECIDED, self.store.get(request_id))
        if approval.result is ApprovalResult.ALREADY_COUNTED:
            return Decision(DecisionResult.ALREADY_APPROVED, request, approvers=approval.approvers)
        if approval.result is ApprovalResult.ADDED:
            log.info("request #%s: approval %s of %s", request_id, len(approval.approvers), request.approvals_required)
            return Decision(DecisionResult.APPROVAL_ADDED, request, approvers=approval.approvers)
        # The request is returned as read before the decision: saving a read keeps the click's ack fast.
        context = log_context(request_id=request_id, user_id=user_id, event="approved")
        log.info("request #%s approved by %s", request_id, user_id, extra=context)
        self.executor.submit(request_id)
        return Decision(DecisionResult.APPROVED, request, approvers=approval.approvers)

    def cancel(self, request_id: int, user_id: str, *, origin: ClickOrigin | None) -> Decision:
        """Withdraw a pending request: only its requester may, with its Cancel button or the command (no origin).

        Approvers have Reject instead. Cancelling calls no MTurk, so an app in either environment may do it.
        """
        request = self.store.get(request_id)
        if request is None:
            return Decision(DecisionResult.NOT_FOUND, None, f"Request #{request_id} does not exist.")
        if origin is not None and not on_approval_message(origin, request):
            return _off_surface(request, user_id)
        if user_id != request.requester_id:
            return Decision(
                DecisionResult.REFUSED,
                request,
                f"Only the person who made request #{request_id} can cancel it; an approver can Reject it instead.",
            )
        if refusal := self.policy.request_refusal(user_id):
            return Decision(DecisionResult.REFUSED, request, refusal)
        if not self.store.cancel(request_id, user_id=user_id):
            return Decision(DecisionResult.ALREADY_DECIDED, self.store.get(request_id))
        log.info("request #%s cancelled by its requester", request_id)
        return Decision(DecisionResult.CANCELLED, request)

    def retry_failed(self, request_id: int, round: int, user_id: str, *, origin: ClickOrigin) -> Decision:
        """Re-run only the failed workers of `round`, under the same rules as an approval; once per round.

        Only from the latest summary: an older summary's button (or one anywhere else) changes nothing.
        """
        request = self._decidable(request_id, user_id, lambda r: on_current_summary(origin, r))
        if isinstance(request, Decision):
            return request
        retryable = request.state is RequestState.FAILED and request.round == round
        if retryable and (refusal := self._elsewhere(request, user_id)):
            return refusal
        if not self.store.retry_failed(request_id, round=round, user_id=user_id):
            return Decision(DecisionResult.ALREADY_DECIDED, self.store.get(request_id))
        log.info("request #%s: failed workers of round %s retried by %s", request_id, round, user_id)
        self.executor.submit(request_id)
        return Decision(DecisionResult.APPROVED, self.store.get(request_id))

    def undo(self, request_id: int, user_id: str, *, origin: ClickOrigin) -> Decision:
        """Store, for approval like any request, the request that puts each worker a finished request changed back
        to the state recorded before it ran; once per request (a second click finds it undone).

        Only approvers, only from the request's latest summary, only in the request's own MTurk environment (the
        undo's preview reads MTurk). The clicker is the undo's requester, so another approver decides on it.
        """
        request = self.store.get(request_id)
        if request is None:
            return Decision(DecisionResult.NOT_FOUND, None, f"Request #{request_id} does not exist.")
        if not on_current_summary(origin, request):
            return _off_surface(request, user_id)
        if refusal := self.policy.undo_refusal(user_id):
            return Decision(DecisionResult.REFUSED, request, refusal)
        if request.undone_by is not None:
            return Decision(
                DecisionResult.ALREADY_DECIDED,
                request,
                f"Request #{request_id} was already undone as #{request.undone_by}.",
            )
        if request.state not in (RequestState.DONE, RequestState.FAILED):
            return Decision(DecisionResult.ALREADY_DECIDED, request, f"Request #{request_id} is not finished.")
        if refusal := self._elsewhere(request, user_id):
            return refusal
        targets = [
            target
            for worker_id, before in self.store.changed_workers(request_id).items()
            if (target := restoring(worker_id, before)) is not None
        ]
        if not targets:
            return Decision(
                DecisionResult.REFUSED,
                request,
                f"Request #{request_id} changed no worker's qualification: nothing to undo.",
            )
        undo = self.store.create_undo(
            _undo_spec(request, targets),
            requester_id=user_id,
            mturk_env=request.mturk_env,
            qualification_name=request.qualification_name,
            preview_owner=self.previews.owner if self.previews else None,
            lease=self.previews.lease if self.previews else timedelta(seconds=60),
            approvals_required=self.policy.approvals_needed(MTurkEnvironment(request.mturk_env)),
        )
        if undo is None:
            again = self.store.get(request_id)
            by = f" as #{again.undone_by}" if again and again.undone_by else ""
            return Decision(DecisionResult.ALREADY_DECIDED, again, f"Request #{request_id} was already undone{by}.")
        log.info("request #%s: undo requested by %s as #%s (%s workers)", request_id, user_id, undo.id, len(targets))
        return Decision(DecisionResult.UNDO_REQUESTED, undo)

    def _elsewhere(self, request: GrantRequest, user_id: str) -> Decision | None:
        """A refusal, changing nothing, if the request belongs to the other MTurk environment than this app's."""
        if refusal := self.executor.other_environment_refusal(request, user_id):
            return Decision(DecisionResult.WRONG_ENVIRONMENT, request, refusal)
        return None


def _undo_spec(original: GrantRequest, targets: list[WorkerTarget]) -> GrantSpec:
    """The undo's change set: no email for the re-granted scores and no message for the revokes (putting back
    what was there is no news to tell the workers), and an internal reason naming the original."""
    return GrantSpec(
        original.qualification_type_id,
        tuple(targets),
        send_notification=False,
        reason=f"Undo of request #{original.id}",
        undo_of=original.id,
    )


def _off_surface(request: GrantRequest, user_id: str) -> Decision:
    """A button clicked elsewhere than where the app rendered it for the request: nothing changes."""
    log.warning("request #%s: a button clicked by %s elsewhere than on the request was ignored", request.id, user_id)
    return Decision(
        DecisionResult.NOT_ON_REQUEST_MESSAGE,
        request,
        f"This button is not on request #{request.id}'s message in the approvals channel; nothing changed.",
    )
