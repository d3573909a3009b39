"""The self-check: named checks that each pass with what they found or fail with what to do, one line each.

`python app.py --check` prints every line; `python app.py` runs the same checks before it starts and stops
at the first that fails. This module owns the shape of a check and the checks that need no Slack (MTurk and
the database); bot/slack/selfcheck.py has Slack's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.mturk import MTurkAccessError, MTurkGateway, MTurkUnavailable
from bot.store import DatabaseUnreachable, GrantStore

PASSED, FAILED = "✓", "✗"


class CheckFailed(Exception):
    """Ends a check as failed; the message says, in one line, what is wrong and what to do about it."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{PASSED if self.ok else FAILED} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Check:
    """One item: `probe` returns what it found, or raises CheckFailed with what to do."""

    name: str
    probe: Callable[[], str]

    def run(self) -> CheckResult:
        try:
            return CheckResult(self.name, True, self.probe())
        except CheckFailed as failure:
            return CheckResult(self.name, False, str(failure))
        except Exception as error:
            # A check ends in a line, never a traceback; the type is enough to search for, and carries no secret.
            return CheckResult(self.name, False, f"the check itself failed ({type(error).__name__})")


def run_checks(checks: Iterable[Check], *, stop_at_failure: bool = False) -> list[CheckResult]:
    """Run the checks in order; with `stop_at_failure`, none after the first that fails."""
    results: list[CheckResult] = []
    for check in checks:
        results.append(check.run())
        if stop_at_failure and not results[-1].ok:
            break
    return results


def mturk_check(gateway: MTurkGateway) -> Check:
    def probe() -> str:
        endpoint = gateway.client.meta.endpoint_url
        try:
            balance = gateway.account_balance()
        except MTurkAccessError as error:
            raise CheckFailed(str(error)) from None
        except MTurkUnavailable as error:
            raise CheckFailed(
                f"{error} at {endpoint}; check the network, any proxy (HTTPS_PROXY) and MTURK_ENDPOINT_URL"
            ) from None
        return (
            f"the {balance.environment.label} ({balance.endpoint_url}) accepted the credentials; "
            f"balance ${balance.available:,.2f}"
        )

    return Check("MTurk", probe)


def database_check(store: GrantStore, shown_url: str) -> Check:
    """The database opens and its schema is one start-up can bring to the latest migration; creates nothing."""

    def probe() -> str:
        try:
            status = store.schema_status()
        except DatabaseUnreachable as error:
            raise CheckFailed(
                f"cannot open {shown_url} ({error}); check DATABASE_URL and that the database is running"
            ) from None
        if status.missing_file is not None:
            file = status.missing_file.resolve()
            if not file.parent.is_dir():
                raise CheckFailed(f"the directory of {file} does not exist; create it or change DATABASE_URL")
            return f"{file} does not exist yet; start-up creates it"
        if not status.known:
            raise CheckFailed(
                f"{shown_url} is at migration {status.revision}, which this grant-qual does not have "
                "(a newer version upgraded it); run that version"
            )
        if status.revision is None:
            return f"{shown_url} is empty; start-up creates the tables"
        if status.at_head:
            return f"{shown_url} is at the latest migration ({status.head})"
        return f"{shown_url} is at migration {status.revision}; start-up upgrades it to {status.head}"

    return Check("Database", probe)
