"""Pure logic: who may request and who may decide, over user IDs and user groups."""

from __future__ import annotations

from bot.policy import AccessPolicy

POLICY = AccessPolicy(frozenset({"UREQ", "UAPP"}), frozenset({"UAPP", "UAPP2"}))


class Groups:
    """A membership as the tests set it: group → members (None: not read yet), group → handle."""

    def __init__(self, members: dict[str, frozenset[str] | None], handles: dict[str, str]) -> None:
        self._members, self._handles = members, handles

    def members(self, group_id: str) -> frozenset[str] | None:
        return self._members.get(group_id)

    def handle(self, group_id: str) -> str | None:
        return self._handles.get(group_id)


def test_only_requesters_may_request() -> None:
    assert POLICY.request_refusal("UREQ") is None
    assert POLICY.request_refusal("UAPP") is None
    assert POLICY.request_refusal("UOTHER") == (
        "Only requesters can request qualification grants; to become one, ask <@UAPP> or <@UAPP2>. "
        "Your member ID is UOTHER."
    )


def test_only_approvers_decide_and_not_on_their_own_requests() -> None:
    assert POLICY.decision_refusal("UAPP", "UREQ") is None
    assert POLICY.decision_refusal("UREQ", "UREQ") == (
        "Only approvers can approve or reject requests; ask <@UAPP> or <@UAPP2>. Your member ID is UREQ."
    )
    assert POLICY.decision_refusal("UAPP", "UAPP") == (
        "You cannot decide on your own request; ask another approver: <@UAPP> or <@UAPP2>."
    )


def test_self_approval_when_allowed() -> None:
    allowing = AccessPolicy(POLICY.requesters, POLICY.approvers, allow_self_approval=True)
    assert allowing.decision_refusal("UAPP", "UAPP") is None
    assert allowing.decision_refusal("UREQ", "UREQ") is not None


def test_group_members_are_admitted_and_refusals_name_the_group_by_handle() -> None:
    groups = Groups({"SAPP": frozenset({"UG1"}), "SREQ": frozenset({"UG2"})}, {"SAPP": "mturk-approvers"})
    policy = AccessPolicy(frozenset({"SREQ"}), frozenset({"SAPP", "UAPP", "UAPP2"}), membership=groups)
    assert policy.is_approver("UG1") and policy.is_approver("UAPP") and not policy.is_approver("UG2")
    assert policy.request_refusal("UG2") is None and policy.lookup_refusal("UG1") is None
    assert policy.decision_refusal("UG2", "UX") == (
        "Only approvers can approve or reject requests; ask someone in @mturk-approvers (or <@UAPP>, <@UAPP2>). "
        "Your member ID is UG2."
    )
    assert "GRANT_" not in (policy.request_refusal("UOTHER") or "")


def test_a_group_not_read_yet_admits_nobody_and_says_so() -> None:
    policy = AccessPolicy(frozenset({"UREQ"}), frozenset({"SAPP"}), membership=Groups({"SAPP": None}, {}))
    assert not policy.is_approver("UG1")
    assert policy.decision_refusal("UG1", "UREQ") == (
        "Only approvers can approve or reject requests; ask someone in SAPP. (The members of SAPP could not be "
        "read from Slack yet; try again in a minute.) Your member ID is UG1."
    )


def test_a_long_list_of_people_is_cut() -> None:
    approvers = frozenset(f"U{i:02d}" for i in range(8))
    refusal = AccessPolicy(frozenset({"UREQ"}), approvers).decision_refusal("UX", "UREQ") or ""
    assert "<@U04> or 3 more." in refusal and "<@U05>" not in refusal
