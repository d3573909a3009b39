"""Client-side pacing of MTurk calls that finds MTurk's rate by itself.

MTurk publishes no request-rate limit; it answers ThrottlingException when a caller goes too fast. The
limiter spaces calls evenly at its current rate (no bursts, so a sliding-window limit is not tripped by
clumps) and adapts like TCP CUBIC: on throttling it cuts the rate just below what MTurk actually accepted
and remembers that as the ceiling; then the rate follows a cubic curve in the time since the cut: back
to the ceiling quickly, flat near it, then probing above it ever faster. The last part matters as much
as the cut: a throttle that says little about the rate (a sporadic one, or one while demand was low)
sets a ceiling that is too low, and the probe must leave it behind within seconds, not minutes. The cut is
shallow (to 0.97 of the accepted rate): a per-second limit is measured exactly by the calls MTurk accepted
in the trailing second, and a deep cut (TCP's 0.7, or 0.9) only gives calls away while the curve climbs
back (measured against the per-second limit of the fake: 0.988 of the limit at 0.97, 0.964 at 0.9). While the
rate is below a ceiling just found, throttles do not cut it again: they are stragglers or noise, and
cutting on each one would ratchet the rate down to nothing under sporadic throttling. After a cut, the
calls already sent in the trailing second count against the new rate (else the second after a burst is
spent sending calls into a full window), and at a throttle the calls still in flight count as accepted.
Work that starts after a pause starts just below the ceiling: the curve's time since the cut says nothing
about the limit after a pause.

The rate is MTurk's for the whole account. A limiter can start from a ceiling learned before (`start_from`,
by an earlier process) instead of `max_rate`, take one found by another replica (`adopt`), and pace its
own calls at `rate / share` while `share` replicas grant at once, between theirs (`rank`); bot/budget.py
keeps those in the database. When another replica is throttled it backs off as if throttled itself
(`back_off`), and replicas settle on one count of the overshoot (`agree`): bot/budget.py carries the news.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from bot.turns import TurnQueue

WINDOW = 1.0  # seconds of accepted calls that measure the rate MTurk accepted
MAX_NAP = 0.05  # a waiting call looks at the rate again at least this often
REMEMBERED_HEADROOM = 0.98  # a remembered ceiling is started just below: the limit may have moved since
CUT_FACTOR = 0.97  # at a throttle, the rate goes to this share of what MTurk accepted (see above)
IDLE_AFTER = 1.0  # seconds without a call after which the next call counts as the start of new work
NEVER = -1e9  # the time of what has not happened yet


class AdaptiveRateLimiter:
    def __init__(
        self,
        max_rate: float,
        *,
        min_rate: float = 1.0,
        cut_factor: float = CUT_FACTOR,
        cooldown: float = 1.0,
        probe_scale: float = 0.4,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.max_rate = max_rate
        self.min_rate = min_rate
        self.rate = max_rate
        self.ceiling: float | None = None  # the accepted rate when MTurk last throttled
        self.throttles = 0
        self.cuts = 0  # ceilings found here by throttling (bot/budget.py writes each one down)
        # Of the last cut found here: when the throttled call was sent, and the calls this limiter had MTurk
        # accept in the second before (replicas add up theirs for the account's count: bot/budget.py).
        self.last_cut_sent_at = 0.0
        self.last_cut_count = 0
        self.share = 1  # replicas granting for this MTurk account at once: this one paces at rate / share
        # Whether the rate may rise above the ceiling. Of replicas granting at once, one probes for all: each
        # probing on its own would be throttled in turn, once per curve, where one replica is throttled once.
        self.probes = True
        self.rank = 0  # this replica's place among those sharing (by ID): its calls fall between the others'
        self.last_call_at = -1e9
        # Called (outside the lock) when a call comes after IDLE_AFTER without one: work begins.
        self.on_busy: Callable[[], None] | None = None
        # Called (outside the lock) when a throttle has cut the rate: other replicas should hear of it at once.
        self.on_cut: Callable[[], None] | None = None
        self._cut_factor = cut_factor
        self._cooldown = cooldown
        # calls/s³: how fast the curve leaves the ceiling (TCP CUBIC's C, which botocore's adaptive mode uses too).
        self._probe_scale = probe_scale
        self._clock = clock
        self._sleep = sleep
        self._wall = wall  # a clock the replicas share (NTP), to interleave their calls
        self._interleaved_after: float | None = None  # the last call before the idle stretch just interleaved
        self._lock = threading.Lock()
        self._last_send = -1e9
        self._turns = TurnQueue()  # callers waiting for a slot, first in first out
        self._last_cut = NEVER
        self._held_until = NEVER  # after another replica's throttle: no call before this (see back_off)
        self._curve_from = -1e9  # where the cubic curve starts: the last cut, or a ceiling remembered or adopted
        # A ceiling found or adopted while running; a remembered one is unconfirmed, so a throttle below it cuts.
        self._confirmed = False
        self._plateau_at = 0.0  # seconds after a cut when the curve is back at the ceiling
        self._busy_since = -1e9  # when the current stretch of work began
        # The most calls MTurk accepted in a full trailing second since the last cut: the limit is at least that.
        self._best_since_cut = 0.0
        self._curve_base = 0.0  # the rate where the curve is flat: the ceiling, or just below a stale memory
        self._probe_at_once = False  # a stale memory: probe above it without the flat stretch
        self._accepted: deque[float] = deque()
        self._sent: deque[float] = deque()  # this limiter's sends in the trailing two seconds
        self._throttled: deque[float] = deque()  # throttling answers in the trailing second
        self._throttled_sends: deque[float] = deque()  # when the calls MTurk throttled were sent (two seconds)
        self._slot = threading.local()  # sent_at: when this thread's latest call was given its slot

    def acquire(self, *, again: bool = False) -> None:
        """Wait for this call's slot: one call per 1/rate seconds, at the rate of the moment, and no more
        calls in any trailing second than the rate (after a cut, the calls sent at the old pace count).

        Callers queue in order and only the first one waits for the clock, looking at the rate again at
        least every MAX_NAP: slots are not booked ahead at the old spacing, so when the rate rises after
        a cut the calls speed up at once. A call made `again` after MTurk throttled it goes before the
        others waiting: it had its turn, and at the end of a batch it would otherwise hold the result back.
        """
        with self._turns.turn(urgent=again):
            was_idle = self._wait_for_slot()
        if was_idle and self.on_busy is not None:
            self.on_busy()

    def _wait_for_slot(self) -> bool:
        while True:
            with self._lock:
                now = self._clock()
                gap = self.share / self.rate
                if (
                    now - self.last_call_at > IDLE_AFTER
                    and self.share > 1
                    and self._interleaved_after != self.last_call_at
                ):
                    self._interleaved_after = self.last_call_at
                    self._last_send = self._interleaved_slot(now) - gap
                due = self._last_send + gap
                self._forget_before(now - WINDOW)
                per_window = math.ceil(self.rate / self.share)
                if self._sent_after(now - WINDOW) >= per_window:
                    due = max(due, self._sent[len(self._sent) - per_window] + WINDOW)
                due = max(due, self._held_until)
                if now >= due:
                    self._sent.append(now)
                    self._slot.sent_at = now
                    # Keep to the grid when only a little late (sleeps overshoot); after idling, restart it.
                    self._last_send = due if now - due < gap else now
                    was_idle = now - self.last_call_at > IDLE_AFTER
                    self.last_call_at = now
                    if was_idle:
                        self._busy_since = now
                        if self.ceiling is not None:
                            self._restart_curve(now)
                    return was_idle
            self._sleep(min(due - now, MAX_NAP))

    def _interleaved_slot(self, now: float) -> float:
        """The first slot from `now` (on this limiter's clock) of this replica's share of the account's pace.

        Replicas starting work together would otherwise send in step: at a first overshoot, each sends into the
        full second a millisecond after the other, before it can hear of the other's throttle, and both are
        throttled. The account's slots are the wall clock's multiples of 1/rate; this replica takes every
        share-th of them from its rank, so the others' calls fall between its own (a cut reaches them in
        a few milliseconds; at 200 calls/s the calls are 5 ms apart).
        """
        account_gap = 1.0 / self.rate
        wall = self._wall()
        turn = math.ceil((wall / account_gap - self.rank) / self.share)
        return now + (turn * self.share + self.rank) * account_gap - wall

    def busy(self, within: float) -> bool:
        """Whether a call was made in the last `within` seconds."""
        with self._lock:
            return self._clock() - self.last_call_at < within

    def start_from(self, ceiling: float, *, stale: bool = False) -> None:
        """Start from a ceiling learned before instead of `max_rate`: just below it, then the usual curve.

        A fresh one is approached as after a cut (back at it within about two seconds, then probing above);
        a `stale` one (the limit may have moved a lot) is probed above at once, from just below it.
        """
        with self._lock:
            self.ceiling = self._bounded(ceiling)
            self._probe_at_once = stale
            self._restart_curve(self._clock())

    def _restart_curve(self, now: float) -> None:
        """Just below the ceiling known, then the curve; also when work starts after idling, since the time
        since the last cut says nothing about the limit after a pause (the curve would be far above it).

        The ceiling is not confirmed by this work yet: a throttle below it cuts.
        """
        assert self.ceiling is not None
        self.ceiling = max(self.ceiling, self._best_since_cut)
        self.rate = max(self.min_rate, self.ceiling * REMEMBERED_HEADROOM)
        self._curve_from = now
        self._curve_base = self.rate if self._probe_at_once else self.ceiling
        self._plateau_at = 0.0 if self._probe_at_once else self._plateau_after(self.rate)
        self._confirmed = False

    @property
    def learned_rate(self) -> float | None:
        """The best estimate of MTurk's limit: the ceiling, or more if MTurk has accepted more in a second since.

        The ceiling found at the first throttle of a run undercounts: calls still in flight were accepted
        too, but their answers have not come back. None while MTurk has never throttled.
        """
        with self._lock:
            return None if self.ceiling is None else max(self.ceiling, self._best_since_cut)

    def adopt(self, ceiling: float) -> None:
        """Take a limit another replica learned: below this limiter's rate, as if it had cut there itself.

        Ignored within the cooldown of a cut of its own: both saw the same overshoot, and a second cut would
        halve the rate for nothing (`agree` takes the replicas' common estimate of it instead). A higher one
        only raises the ceiling the next work starts from.
        """
        with self._lock:
            now = self._clock()
            ceiling = self._bounded(ceiling)
            if now - self._last_cut < self._cooldown:
                return
            if ceiling < self.rate:
                self._cut_to(ceiling, now)
            else:
                self.ceiling = max(self.ceiling or 0.0, ceiling)

    def back_off(self, ceiling: float) -> None:
        """Cut as if throttled here: another replica was throttled just now, and the account's limit is
        `ceiling` (bot/budget.py). Within the cooldown of a cut (its own, or another back-off) it describes
        the same overshoot: it replaces that cut's ceiling (`agree`), and is not a second cut."""
        with self._lock:
            now = self._clock()
            if now - self._last_cut >= self._cooldown:
                self._cut_to(self._bounded(ceiling), now)
                self._wait_for_the_window(now)
            else:
                self._replace_last_cut(ceiling, now)

    def _wait_for_the_window(self, now: float) -> None:
        """No call until this limiter's oldest call of the trailing second has left it. MTurk's second is full
        (another replica was just throttled), but this limiter counts only its own calls in it: under its share
        of the new rate, it would send into that full second at once. (Its own cut needs no more: the calls it
        sent at the old pace count against the new rate.)"""
        in_window = self._sent_after(now - WINDOW)
        if in_window:
            self._held_until = self._sent[len(self._sent) - in_window] + WINDOW

    def now(self) -> float:
        """This limiter's clock (monotonic seconds)."""
        return self._clock()

    def accepted_before(self, sent_at: float) -> int:
        """The calls this limiter had MTurk accept in the second before `sent_at` (on its clock)."""
        with self._lock:
            return self._accepted_before_send(sent_at)

    def agree(self, ceiling: float) -> None:
        """Replace the ceiling of this limiter's last cut (its own, or a back-off) by the replicas' common
        estimate of the same overshoot, as if it had cut there at the same moment: not a second cut."""
        with self._lock:
            if self._last_cut != NEVER:  # else no cut to replace
                self._replace_last_cut(ceiling, self._clock())

    def on_success(self) -> None:
        with self._lock:
            now = self._clock()
            self._forget_before(now - WINDOW)
            self._accepted.append(now)
            if now - self._busy_since >= WINDOW:
                # Not above the pace asked for: this replica's count times a share that may just have changed.
                accepted = min(self.rate, float(len(self._accepted) * self.share))
                self._best_since_cut = max(self._best_since_cut, accepted)
            self.rate = self._rate_at(now)

    def on_throttle(self) -> None:
        with self._lock:
            cut = self._throttled_here()
        if cut and self.on_cut is not None:
            self.on_cut()

    def _throttled_here(self) -> bool:
        """Count a throttle of this limiter's call; returns whether it cut the rate."""
        now = self._clock()
        self.throttles += 1
        self._throttled.append(now)
        sent_at = getattr(self._slot, "sent_at", None)
        if sent_at is not None:
            self._throttled_sends.append(sent_at)
        if now - self._last_cut < self._cooldown:
            return False  # one cut per burst of throttles: they all describe the same overshoot
        if self._confirmed and self.ceiling is not None and self.rate < self.ceiling:
            # Already below the last limit found, so this is no news about our pace: a straggler
            # sent before the cut, or a throttle MTurk would have sent at any pace. Cutting again on
            # every such one would ratchet the rate down to nothing; the next probe above re-measures.
            return False
        self._forget_before(now - WINDOW)
        self.last_cut_sent_at = now if sent_at is None else sent_at
        self.last_cut_count = self._accepted_count(now, sent_at)
        accepted_rate = float(self.last_cut_count * self.share) or self.rate
        self._cut_to(max(self.min_rate, min(self.rate, accepted_rate)), now)
        self.cuts += 1
        return True

    def _replace_last_cut(self, ceiling: float, now: float) -> None:
        """As if the last cut had found `ceiling`: the curve from that cut's moment, not a second cut."""
        self._cut_to(self._bounded(ceiling), self._last_cut)
        self.rate = self._rate_at(now)

    def _bounded(self, rate: float) -> float:
        return max(self.min_rate, min(self.max_rate, rate))

    def _cut_to(self, ceiling: float, now: float) -> None:
        self.ceiling = self._curve_base = ceiling
        self._best_since_cut = 0.0
        self._probe_at_once = False
        self.rate = max(self.min_rate, ceiling * self._cut_factor)
        self._last_cut = self._curve_from = now
        self._plateau_at = self._plateau_after(self.rate)
        self._confirmed = True

    def _plateau_after(self, start: float) -> float:
        """Seconds the curve takes from `start` back up to the ceiling."""
        assert self.ceiling is not None
        return (max(0.0, self.ceiling - start) / self._probe_scale) ** (1.0 / 3.0)

    def _accepted_count(self, now: float, sent_at: float | None) -> int:
        """Calls MTurk accepted in the trailing second: under a per-second limit, that count (times the
        replicas sharing the account, each with its own count: bot/budget.py adds them up) is the limit.

        Calls sent and not answered yet count as accepted: a throttle comes back at once while the calls
        sent just before it (accepted) are still being served, and the first throttle of a run would
        otherwise find a ceiling a third too low. Early on, or while demand is low, the count is below the
        limit; the cubic probe then recovers.
        """
        in_flight = max(0, self._sent_after(now - WINDOW) - len(self._accepted) - len(self._throttled))
        counted = len(self._accepted) + in_flight
        if sent_at is not None:
            counted = max(counted, self._accepted_before_send(sent_at))
        return counted

    def _accepted_before_send(self, sent_at: float) -> int:
        """The calls sent in the second before the throttled call was (`sent_at`) and not throttled: the second
        MTurk counted. The second before the throttle's answer misses the oldest call MTurk counted whenever
        that call was sent just over a second before the answer came, and the limit came out a call low."""
        since = sent_at - WINDOW
        sent = self._sent_after(since) - self._sent_after(sent_at)
        return sent - sum(1 for t in self._throttled_sends if since < t <= sent_at)

    def _sent_after(self, moment: float) -> int:
        return len(self._sent) - bisect.bisect_right(self._sent, moment)

    def _rate_at(self, now: float) -> float:
        if self.ceiling is None:
            return self.max_rate  # never throttled: go as fast as allowed until MTurk says otherwise
        since_cut = now - self._curve_from
        curve = self._curve_base + self._probe_scale * (since_cut - self._plateau_at) ** 3
        if not self.probes:
            curve = min(curve, self.ceiling)
        return min(self.max_rate, max(self.min_rate, curve))

    def _forget_before(self, moment: float) -> None:
        """Forget what is older than `moment`; sends a second longer (a throttle counts from its call's send)."""
        older = moment - WINDOW
        times_before = ((self._accepted, moment), (self._throttled, moment), (self._sent, older))
        for times, before in (*times_before, (self._throttled_sends, older)):
            while times and times[0] <= before:
                times.popleft()
