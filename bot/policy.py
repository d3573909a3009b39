"""Who may request and who may decide: plain rules over Slack user IDs, no Slack calls inside."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import MTurkEnvironment


@dataclass(frozen=True)
class AccessPolicy:
    requesters: frozenset[str]
    approvers: frozenset[str]
    allow_self_approval: bool = False
    # Distinct approvers a request needs before it runs (APPROVALS_REQUIRED), and in production if different.
    approvals_required: int = 1
    production_approvals_required: int | None = None

    def approvals_needed(self, env: MTurkEnvironment) -> int:
        """How many distinct approvers a request made now in `env` needs (fixed on the request from then on)."""
        if env is MTurkEnvironment.PRODUCTION and self.production_approvals_required is not None:
            return self.production_approvals_required
        return self.approvals_required

    def request_refusal(self, user_id: str) -> str | None:
        """Why `user_id` may not request grants, or None if they may."""
        if user_id in self.requesters:
            return None
        return "You are not on the list of people who may request qualification grants (GRANT_REQUESTERS)."

    def decision_refusal(self, user_id: str, requester_id: str) -> str | None:
        """Why `user_id` may not approve or reject a request made by `requester_id`, or None if they may."""
        if user_id not in self.approvers:
            return "Only approvers listed in GRANT_APPROVERS can approve or reject requests."
        if user_id == requester_id and not self.allow_self_approval:
            return "You cannot decide on your own request; another approver has to (ALLOW_SELF_APPROVAL is off)."
        return None

    def approval_refusal(self, user_id: str, requester_id: str, approvals_required: int) -> str | None:
        """Why `user_id`'s approval does not count, or None if it does.

        The requester never counts toward several approvals: ALLOW_SELF_APPROVAL lets them approve their own
        request only when one approval is all it needs.
        """
        if refusal := self.decision_refusal(user_id, requester_id):
            return refusal
        if user_id == requester_id and approvals_required > 1:
            return (
                f"Your own approval does not count: this request needs {approvals_required} approvers other than "
                "the person who made it."
            )
        return None

    def undo_refusal(self, user_id: str) -> str | None:
        """Why `user_id` may not ask to undo a finished request, or None if they may (approvers may; the undo is
        then decided like any request, by another approver)."""
        if user_id in self.approvers:
            return None
        return "Only approvers listed in GRANT_APPROVERS can undo a request."

    def lookup_refusal(self, user_id: str) -> str | None:
        """Why `user_id` may not look things up, or None if they may (requesters and approvers may)."""
        if user_id in self.requesters or user_id in self.approvers:
            return None
        return "Only the people who may request or approve grants can look things up."
