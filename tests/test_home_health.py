"""The Home tab's health line: MTurk's balance is asked at most once a minute, its failure shown as said."""

from __future__ import annotations

from decimal import Decimal

from bot.config import MTurkEnvironment
from bot.home import BalanceCache, Health
from bot.mturk import AccountBalance, MTurkUnavailable
from bot.slack.home_blocks import health_line


class CountingGateway:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    def account_balance(self) -> AccountBalance:
        self.calls += 1
        if self.down:
            raise MTurkUnavailable("MTurk could not be reached (timed out)")
        return AccountBalance(Decimal("12.50"), MTurkEnvironment.SANDBOX, "https://mturk.example")


def test_the_balance_is_kept_for_a_minute_then_asked_again() -> None:
    gateway, now = CountingGateway(), [0.0]
    cache = BalanceCache(gateway, seconds=60, clock=lambda: now[0])  # type: ignore[arg-type]
    assert cache.current() == (Decimal("12.50"), "")
    now[0] = 59.9
    cache.current()
    assert gateway.calls == 1
    gateway.down, now[0] = True, 60.0
    assert cache.current() == (None, "MTurk could not be reached (timed out)")
    now[0] = 100.0
    cache.current()
    assert gateway.calls == 2  # a failure is kept for the minute too: a Home open never waits on MTurk again


def test_the_health_line_says_what_mturk_answered() -> None:
    up = Health(True, Decimal("1234.5"), "", None)
    assert health_line(up) == ":large_green_circle: MTurk reachable · balance $1,234.50 · no grant finished yet"
    down = Health(False, None, "AWS rejected the credentials <x>", None)
    assert health_line(down).startswith(":red_circle: MTurk not reachable: AWS rejected the credentials &lt;x&gt;")
