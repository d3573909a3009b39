"""Who may request and who may decide: plain rules over Slack user IDs and user groups, no Slack calls inside.

An allowlist mixes user IDs (`U…`, `W…`) and user group IDs (`S…`). Who is in a group comes through the small
`Membership` interface (the Slack layer reads it from Slack and keeps it fresh); a group whose members are not
known yet admits nobody (fail closed). A refusal names who to ask and the user's own member ID, never a setting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import MTurkEnvironment

NAMED_USERS_SHOWN = 5  # a refusal names at most this many people listed one by one


def is_user_group_id(entry: str) -> bool:
    """Whether an allowlist entry is a user group ID (`S…`) rather than a user ID (`U…`, `W…`)."""
    return entry.startswith("S")


class Membership(Protocol):
    """Who is in which user group, as far as is known now."""

    def members(self, group_id: str) -> frozenset[str] | None:
        """The group's members; None while they are not known (the group then admits nobody)."""

    def handle(self, group_id: str) -> str | None:
        """The group's handle without the @ (`mturk-approvers`), None when not known."""


class NoUserGroups:
    """The membership when no allowlist names a group: nobody is in any."""

    def members(self, group_id: str) -> frozenset[str] | None:
        return None

    def handle(self, group_id: str) -> str | None:
        return None


@dataclass(frozen=True)
class AccessPolicy:
    requesters: frozenset[str]
    approvers: frozenset[str]
    allow_self_approval: bool = False
    membership: Membership = field(default_factory=NoUserGroups)
    # Distinct approvers a request needs before it runs (APPROVALS_REQUIRED), and in production if different.
    approvals_required: int = 1
    production_approvals_required: int | None = None

    def is_requester(self, user_id: str) -> bool:
        return self._admits(self.requesters, user_id)

    def is_approver(self, user_id: str) -> bool:
        return self._admits(self.approvers, user_id)

    def approvals_needed(self, env: MTurkEnvironment) -> int:
        """How many distinct approvers a request made now in `env` needs (fixed on the request from then on)."""
        if env is MTurkEnvironment.PRODUCTION and self.production_approvals_required is not None:
            return self.production_approvals_required
        return self.approvals_required

    def request_refusal(self, user_id: str) -> str | None:
        """Why `user_id` may not request grants, or None if they may."""
        if self.is_requester(user_id):
            return None
        return (
            f"Only requesters can request qualification grants; to become one, ask {self._who(self.approvers)}."
            f"{self._unknown_groups(self.requesters)} Your member ID is {user_id}."
        )

    def decision_refusal(self, user_id: str, requester_id: str) -> str | None:
        """Why `user_id` may not approve or reject a request made by `requester_id`, or None if they may."""
        if not self.is_approver(user_id):
            return self._only_approvers("approve or reject requests", user_id)
        if user_id == requester_id and not self.allow_self_approval:
            return f"You cannot decide on your own request; ask another approver: {self._who(self.approvers)}."
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
        return None if self.is_approver(user_id) else self._only_approvers("undo a request", user_id)

    def expiry_refusal(self, user_id: str) -> str | None:
        """Why `user_id` may not extend or revoke now a grant that expires, or None if they may (approvers may)."""
        return None if self.is_approver(user_id) else self._only_approvers("extend or revoke a grant", user_id)

    def export_refusal(self, user_id: str) -> str | None:
        """Why `user_id` may not export the record of requests, or None if they may (approvers may)."""
        return None if self.is_approver(user_id) else self._only_approvers("export the record of requests", user_id)

    def _only_approvers(self, action: str, user_id: str) -> str:
        return (
            f"Only approvers can {action}; ask {self._who(self.approvers)}."
            f"{self._unknown_groups(self.approvers)} Your member ID is {user_id}."
        )

    def lookup_refusal(self, user_id: str) -> str | None:
        """Why `user_id` may not look things up, or None if they may (requesters and approvers may)."""
        if self.is_requester(user_id) or self.is_approver(user_id):
            return None
        return (
            f"Only requesters and approvers can look things up; to become one, ask {self._who(self.approvers)}."
            f"{self._unknown_groups(self.requesters | self.approvers)} Your member ID is {user_id}."
        )

    def _admits(self, allowlist: frozenset[str], user_id: str) -> bool:
        if user_id in allowlist:
            return True
        return any(user_id in (self.membership.members(group) or ()) for group in _groups(allowlist))

    def _who(self, allowlist: frozenset[str]) -> str:
        """`someone in @mturk-approvers (or <@U1>, <@U2>)`, or `<@U1> or <@U2>` when no group is listed."""
        groups = [self._group_name(group) for group in _groups(allowlist)]
        users = [f"<@{user}>" for user in sorted(allowlist) if not is_user_group_id(user)]
        if len(users) > NAMED_USERS_SHOWN:
            users = [*users[:NAMED_USERS_SHOWN], f"{len(users) - NAMED_USERS_SHOWN} more"]
        if not groups:
            return " or ".join([", ".join(users[:-1]), users[-1]] if len(users) > 1 else users)
        named = f"someone in {' or '.join(groups)}"
        return f"{named} (or {', '.join(users)})" if users else named

    def _group_name(self, group_id: str) -> str:
        handle = self.membership.handle(group_id)
        return f"@{handle}" if handle else group_id

    def _unknown_groups(self, allowlist: frozenset[str]) -> str:
        """A note when a group's members could not be read, so the refusal may be wrong for now."""
        unknown = [self._group_name(g) for g in _groups(allowlist) if self.membership.members(g) is None]
        if not unknown:
            return ""
        return f" (The members of {', '.join(unknown)} could not be read from Slack yet; try again in a minute.)"


def _groups(allowlist: Iterable[str]) -> list[str]:
    return sorted(entry for entry in allowlist if is_user_group_id(entry))
