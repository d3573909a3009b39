"""Who may request and who may decide: plain rules over Slack user IDs, no Slack calls inside."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccessPolicy:
    requesters: frozenset[str]
    approvers: frozenset[str]
    allow_self_approval: bool = False

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
