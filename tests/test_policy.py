"""Pure logic: who may request and who may decide."""

from bot.policy import AccessPolicy

POLICY = AccessPolicy(frozenset({"UREQ", "UAPP"}), frozenset({"UAPP", "UAPP2"}))


def test_only_requesters_may_request() -> None:
    assert POLICY.request_refusal("UREQ") is None
    assert POLICY.request_refusal("UAPP") is None
    assert "GRANT_REQUESTERS" in (POLICY.request_refusal("UOTHER") or "")


def test_only_approvers_decide_and_not_on_their_own_requests() -> None:
    assert POLICY.decision_refusal("UAPP", "UREQ") is None
    assert "GRANT_APPROVERS" in (POLICY.decision_refusal("UREQ", "UREQ") or "")
    assert "own request" in (POLICY.decision_refusal("UAPP", "UAPP") or "")


def test_self_approval_when_allowed() -> None:
    allowing = AccessPolicy(POLICY.requesters, POLICY.approvers, allow_self_approval=True)
    assert allowing.decision_refusal("UAPP", "UAPP") is None
    assert allowing.decision_refusal("UREQ", "UREQ") is not None
