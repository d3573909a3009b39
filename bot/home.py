"""What the App Home shows each user: their recent requests, the queue for approvers, and the app's health.

Plain Python over the store, the policy and the MTurk gateway; nothing here knows Slack. The health line asks
MTurk for the balance at most once a minute (a Home is opened often; MTurk is not called on every open).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from bot.lookups import Lookups, MyRequests
from bot.mturk import MTurkAccessError, MTurkGateway, MTurkUnavailable
from bot.policy import AccessPolicy
from bot.requests import GrantRequest
from bot.store import GrantStore

BALANCE_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Health:
    """Whether MTurk answered (and its balance), or why not; and the last request that finished granting."""

    mturk_reachable: bool
    balance: Decimal | None
    problem: str
    last_grant: GrantRequest | None


@dataclass(frozen=True)
class HomePage:
    """One user's Home: what they may do, their requests (None if they may look nothing up), and the health."""

    user_id: str
    may_request: bool
    is_approver: bool
    requests: MyRequests | None
    health: Health


class BalanceCache:
    """MTurk's GetAccountBalance, asked at most once per `seconds` (the answer or the failure is kept)."""

    def __init__(
        self,
        gateway: MTurkGateway,
        seconds: float = BALANCE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._answer: tuple[Decimal | None, str] = (None, "")

    def current(self) -> tuple[Decimal | None, str]:
        """The balance, or None and why MTurk did not give it."""
        with self._lock:
            if self._at is None or self.clock() - self._at >= self.seconds:
                self._answer = self._ask()
                self._at = self.clock()
            return self._answer

    def _ask(self) -> tuple[Decimal | None, str]:
        try:
            return self.gateway.account_balance().available, ""
        except (MTurkAccessError, MTurkUnavailable) as error:
            return None, str(error)


class AppHome:
    """Builds each user's HomePage."""

    def __init__(self, store: GrantStore, policy: AccessPolicy, balance: BalanceCache) -> None:
        self.store = store
        self.policy = policy
        self.balance = balance

    def page(self, user_id: str) -> HomePage:
        may_look_up = self.policy.lookup_refusal(user_id) is None
        requests = Lookups(self.store, self.policy).mine(user_id) if may_look_up else None
        return HomePage(
            user_id,
            may_request=self.policy.request_refusal(user_id) is None,
            is_approver=self.policy.is_approver(user_id),
            requests=requests,
            health=self.health(),
        )

    def health(self) -> Health:
        balance, problem = self.balance.current()
        return Health(balance is not None, balance, problem, self.store.last_finished_request())
