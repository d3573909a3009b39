"""One MTurk budget per account: the learned rate limit, remembered across requests and restarts, shared by replicas.

MTurk throttles per account, and the limiter (bot/ratelimit.py) learns the limit from its throttles. This
module keeps what it learns in the database, in two tables of its own:

- `mturk_budget`, one row per MTurk environment: the limit learned (calls/s for the whole account: the
  ceiling found at the latest throttle, or more if MTurk has accepted more in a second since), when and
  by which replica. A process starts its limiter just below it instead of at MTURK_MAX_TPS, and so does
  each request after a pause (bot/ratelimit.py), so a request no longer pays for learning the limit
  afresh; it still probes above and cuts as before. A memory older than STALE_AFTER is probed above at
  once instead of after a flat stretch. A new ceiling is written within a tick of the cut that found it;
  a limit that has risen by more than 2%, at most every WRITE_EVERY; nothing otherwise.
- `mturk_replicas` (shared databases only): each replica's heartbeat, and whether it is granting (it made
  an MTurk call within ACTIVE_FOR). Every TICK a replica checks in and counts the active replicas seen
  within LIVE_FOR; each paces its own calls at the account's rate / that count (`limiter.share`), so
  replicas granting at once stay within the account's limit together, and an idle, stopped or dead replica
  takes no share. A replica starting work checks in at its first call, not at the next tick. A limit
  written by one replica is taken by the others at their next tick, so a throttle seen by one lowers the
  rate of all. Replicas throttled at the same overshoot each estimate the account's rate as their own count
  times the share, one high and one low; their cuts are recorded as the mean of the two (the account's
  count), which all of them then take in place of their own. Heartbeats carry each replica's own
  clock: the replicas' clocks must agree within about a second (NTP).

A cut is news that cannot wait for the next tick: the other replicas go on at the old pace and are throttled
for the same overshoot, and the prober, still probing above the limit, again a moment later. So the replicas
talk on PostgreSQL (NOTIFY and LISTEN, within the deployment's schema: bot/budget_news.py), in CutNews:
- As soon as its limiter cuts, a replica announces the cut: when the throttled call was sent, and how many
  calls MTurk had accepted from it in the second before.
- Every replica backs off within milliseconds, as if throttled itself (`_heard_cut`). A replica granting too
  adds its own count for that same second, and announces the sum: the account's count, which all take
  (each replica's count times the share is a call or two off, one high, one low).
- The throttled replica writes the cut down AGREE_WITHIN later, once the sum has come. A cut that
  reaches a replica only at a tick (its listener was down) is taken as a ceiling, as before.
Replicas starting work together interleave their calls by rank on the shared wall clock (bot/ratelimit.py),
so at a first overshoot the announcement reaches the other replica between two of its calls.

The budget is keyed by the MTurk environment alone: a deployment's database serves one MTurk account. The
AWS access key ID would not do as the key: with IAM roles it rotates, and differs between replicas.
On SQLite (one process) the ceiling is remembered and nothing is shared. A database that does not answer
costs only the memory: the limiter goes on learning by itself.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Boolean, Column, Engine, Float, String, Table, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from bot.budget_news import CutNews, Listener, NewsChannel
from bot.ratelimit import AdaptiveRateLimiter
from bot.store import UtcDateTime, metadata, now

log = logging.getLogger(__name__)

TICK = 0.5  # seconds between a replica's check-ins
ACTIVE_FOR = 2.0  # a replica that made an MTurk call within this many seconds is granting, and takes a share
LIVE_FOR = timedelta(seconds=3)  # a replica not seen for longer has stopped (or died): its share is freed
FORGET_REPLICAS_AFTER = timedelta(hours=1)
STALE_AFTER = timedelta(days=1)
WRITE_EVERY = timedelta(seconds=2)  # a higher limit learned without a throttle is written at most this often
# Cuts of two replicas written this close together describe the same overshoot (a cut is written within a TICK).
SAME_OVERSHOOT_WITHIN = timedelta(seconds=1)
AGREE_WITHIN = timedelta(seconds=0.2)  # a cut waits this long for the replicas' count to be written down
LISTEN_AGAIN_AFTER = 5.0  # seconds before a listener whose connection failed connects again

mturk_budget = Table(
    "mturk_budget",
    metadata,
    Column("mturk_env", String(16), primary_key=True),
    Column("ceiling_rate", Float, nullable=False),  # calls/s for the whole account, at the latest throttle
    Column("learned_at", UtcDateTime, nullable=False),
    Column("learned_by", String(64), nullable=False),  # the replica that found it
)

mturk_replicas = Table(
    "mturk_replicas",
    metadata,
    Column("replica_id", String(64), primary_key=True),
    Column("mturk_env", String(16), nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
)


@dataclass(frozen=True)
class GrantingReplicas:
    """The replicas granting for one MTurk environment at a check-in."""

    count: int
    prober: str | None  # the one that probes above the limit for all of them (the smallest replica ID)
    rank: int = 0  # of the asking replica, among them by ID: where its calls fall in the account's pace


@dataclass(frozen=True)
class LearnedCeiling:
    rate: float
    learned_at: datetime
    learned_by: str


class BudgetStore(Protocol):
    def learned(self, mturk_env: str) -> LearnedCeiling | None: ...

    def remember(self, mturk_env: str, ceiling: LearnedCeiling) -> None: ...

    def remember_cut(self, mturk_env: str, ceiling: LearnedCeiling) -> float:
        """Record a ceiling found at a throttle; return the account's ceiling for that overshoot."""
        ...

    def check_in(self, replica_id: str, mturk_env: str, *, active: bool, moment: datetime) -> GrantingReplicas:
        """Record this replica's heartbeat; return the replicas of `mturk_env` active now."""
        ...

    def check_out(self, replica_id: str) -> None: ...


class SqlBudgetStore:
    """BudgetStore on the app's database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert

    def learned(self, mturk_env: str) -> LearnedCeiling | None:
        c = mturk_budget.c
        with self.engine.connect() as conn:
            row = conn.execute(select(mturk_budget).where(c.mturk_env == mturk_env)).first()
        return LearnedCeiling(row.ceiling_rate, row.learned_at, row.learned_by) if row else None

    def remember(self, mturk_env: str, ceiling: LearnedCeiling) -> None:
        values = {"ceiling_rate": ceiling.rate, "learned_at": ceiling.learned_at, "learned_by": ceiling.learned_by}
        statement = self._insert(mturk_budget).values(mturk_env=mturk_env, **values)
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=["mturk_env"], set_=values))

    def remember_cut(self, mturk_env: str, ceiling: LearnedCeiling) -> float:
        """Record a ceiling found at a throttle; return the account's ceiling for that overshoot.

        Replicas granting at once are throttled at the same overshoot and each estimates the account's rate
        from its own count, one high and one low. The lower of them would pace the pair below the limit; the
        mean of the two is the account's count. So a cut written within SAME_OVERSHOOT_WITHIN of another
        replica's is recorded as the mean of the two (under a row lock, so no estimate is lost).
        """
        c = mturk_budget.c
        values = {"ceiling_rate": ceiling.rate, "learned_at": ceiling.learned_at, "learned_by": ceiling.learned_by}
        with self.engine.begin() as conn:
            first = self._insert(mturk_budget).values(mturk_env=mturk_env, **values).on_conflict_do_nothing()
            if conn.execute(first).rowcount == 1:
                return ceiling.rate
            row = conn.execute(select(mturk_budget).where(c.mturk_env == mturk_env).with_for_update()).one()
            same_overshoot = abs(row.learned_at - ceiling.learned_at) <= SAME_OVERSHOOT_WITHIN
            if row.learned_by != ceiling.learned_by and same_overshoot:
                values["ceiling_rate"] = (row.ceiling_rate + ceiling.rate) / 2
            conn.execute(mturk_budget.update().where(c.mturk_env == mturk_env).values(**values))
        return float(values["ceiling_rate"])

    def check_in(self, replica_id: str, mturk_env: str, *, active: bool, moment: datetime) -> GrantingReplicas:
        c = mturk_replicas.c
        values = {"mturk_env": mturk_env, "last_seen": moment, "active": active}
        statement = self._insert(mturk_replicas).values(replica_id=replica_id, **values)
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=["replica_id"], set_=values))
            conn.execute(delete(mturk_replicas).where(c.last_seen < moment - FORGET_REPLICAS_AFTER))
            active_now = (c.mturk_env == mturk_env, c.active, c.last_seen >= moment - LIVE_FOR)
            active_ids = conn.execute(select(c.replica_id).where(*active_now).order_by(c.replica_id)).scalars().all()
        rank = sum(1 for other in active_ids if other < replica_id)
        return GrantingReplicas(len(active_ids), active_ids[0] if active_ids else None, rank)

    def check_out(self, replica_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(mturk_replicas).where(mturk_replicas.c.replica_id == replica_id))


class SharedBudget:
    """Keeps one limiter in step with the account's budget in the database: see the module docstring."""

    def __init__(
        self,
        limiter: AdaptiveRateLimiter,
        store: BudgetStore,
        mturk_env: str,
        *,
        shared: bool,
        news: NewsChannel | None = None,
        replica_id: str | None = None,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.limiter = limiter
        self.store = store
        self.news = news if shared else None  # how replicas hear of each other's throttles at once
        self.mturk_env = mturk_env
        self.shared = shared
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self._clock = clock
        self._written_cuts = limiter.cuts
        self._written: LearnedCeiling | None = None
        # The budget's row as this replica last read or wrote it. Another row is news whatever its time: replicas
        # writing at once stamp their rows in either order, and the later write may carry the earlier time.
        self._seen: LearnedCeiling | None = None
        self._cut_written_at: datetime | None = None  # when this replica last wrote a ceiling it cut at
        self._cut_found_at: datetime | None = None  # a cut of this replica's not written down yet
        self._agreed_for: float | None = None  # the overshoot (CutNews.sent_at) this replica last added up
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self.listener = Listener(stop=self._stopping)

    def start_from_memory(self) -> LearnedCeiling | None:
        """Start the limiter from the remembered ceiling, if there is one; returns it."""
        try:
            learned = self.store.learned(self.mturk_env)
        except SQLAlchemyError as error:
            log.warning("MTurk budget: the remembered rate could not be read (%s)", type(error).__name__)
            return None
        if learned is not None:
            stale = self._clock() - learned.learned_at > STALE_AFTER
            self.limiter.start_from(learned.rate, stale=stale)
            self._seen = self._written = learned  # raised when MTurk accepts clearly more, as a limit learned here
            log.info("MTurk budget: starting at %.1f calls/s (learned %s)", learned.rate, learned.learned_at)
        return learned

    def tick(self) -> None:
        """Write down a new ceiling found here, or adopt one found elsewhere; check in and take a share."""
        moment = self._clock()
        limiter = self.limiter
        learned_rate = limiter.learned_rate
        if learned_rate is not None and limiter.cuts != self._written_cuts:
            self._written_cuts = limiter.cuts
            self._cut_found_at = moment
            if self.shared:  # at once; written down once the replicas have added up their counts
                self._announce("cut", limiter.last_cut_sent_at, limiter.last_cut_count, learned_rate)
        if self._cut_found_at is not None:
            if learned_rate is not None and self._time_to_write_cut(moment):
                self._write_cut(LearnedCeiling(learned_rate, self._cut_found_at, self.replica_id))
                self._cut_found_at = None
        elif self.shared and self._take_news():
            pass  # a limit found elsewhere since: what this replica had learned is superseded
        elif learned_rate is not None and self._has_risen(learned_rate, moment):
            self._written = LearnedCeiling(learned_rate, moment, self.replica_id)
            self.store.remember(self.mturk_env, self._written)
            self._seen = self._written
        if self.shared:
            active = limiter.busy(ACTIVE_FOR)
            granting = self.store.check_in(self.replica_id, self.mturk_env, active=active, moment=moment)
            limiter.share = max(1, granting.count)
            limiter.probes = granting.count <= 1 or granting.prober == self.replica_id
            limiter.rank = granting.rank

    def _take_news(self) -> bool:
        """Take the limit another replica wrote since the last one seen here; returns whether there was one.
        A cut heard of already has backed this replica off (`_heard_cut`): `adopt` does not cut again for it."""
        learned = self.store.learned(self.mturk_env)
        if not learned or learned.learned_by == self.replica_id or learned == self._seen:
            return False
        self._seen = self._written = learned  # known to all: only a clear rise above it is worth writing
        if self._describes_my_last_cut(learned):
            self.limiter.agree(learned.rate)
        else:
            self.limiter.adopt(learned.rate)
        return True

    def _time_to_write_cut(self, moment: datetime) -> bool:
        """Written down at once alone; shared, once the others' counts have come (or at the last tick)."""
        assert self._cut_found_at is not None
        return not self.shared or self._stopping.is_set() or moment - self._cut_found_at >= AGREE_WITHIN

    def _announce(self, kind: str, sent_at: float, count: int, ceiling: float) -> None:
        """Announce an overshoot; `sent_at` on the limiter's clock."""
        epoch = self._clock().timestamp() - (self.limiter.now() - sent_at)
        self._tell(CutNews(kind, self.mturk_env, self.replica_id, epoch, count, ceiling))

    def _heard(self, payload: str) -> None:
        news = CutNews.decode(payload)
        if news is None or news.mturk_env != self.mturk_env or news.replica_id == self.replica_id:
            return
        if news.kind == "cut":
            self._heard_cut(news)
        elif news.kind == "agreed":
            self._heard_agreed(news)

    def _heard_cut(self, news: CutNews) -> None:
        """Another replica was throttled just now: the account is over its limit, so back off at once, as if
        throttled here. Taking only the ceiling would leave this replica at its pace when that is just under
        it: the account would back off half as far as one replica does, and be throttled twice as often.

        Its estimate is its own count times the share, one or two calls off the account's count: a replica
        granting too adds its own count for the same second, and announces the sum, which all then take.
        """
        limiter = self.limiter
        ceiling = news.ceiling
        mine = limiter.accepted_before(limiter.now() - (self._clock().timestamp() - news.sent_at))
        if mine and news.count:  # both counted calls in that second; else the announcer's estimate is all there is
            ceiling = float(news.count + mine * (max(2, limiter.share) - 1))
            self._agreed_for = news.sent_at
        limiter.back_off(ceiling)
        # Known to all: written again by this replica, it would read as a second cut (and be averaged with one).
        self._written = LearnedCeiling(ceiling, self._clock(), self.replica_id)
        if self._agreed_for == news.sent_at:
            self._announce_agreed(news.sent_at, ceiling)

    def _announce_agreed(self, epoch: float, ceiling: float) -> None:
        self._tell(CutNews("agreed", self.mturk_env, self.replica_id, epoch, 0, ceiling))

    def _tell(self, news: CutNews) -> None:
        if self.news is not None:
            self.news.announce(news.encode())

    def _heard_agreed(self, news: CutNews) -> None:
        """The replicas' count for an overshoot. Where several replicas added it up (both were throttled, or
        more than two grant), the smallest replica ID's stands, so all settle on one."""
        added_up_too = (
            self._agreed_for is not None
            and abs(news.sent_at - self._agreed_for) < SAME_OVERSHOOT_WITHIN.total_seconds()
        )
        if added_up_too and news.replica_id > self.replica_id:
            return
        self.limiter.back_off(news.ceiling)
        self._written = LearnedCeiling(news.ceiling, self._clock(), self.replica_id)

    def _write_cut(self, found: LearnedCeiling) -> None:
        """Write down a ceiling this replica found; take the account's if another replica cut for the same
        overshoot (in place of its own estimate, not as a second cut)."""
        if not self.shared:
            self.store.remember(self.mturk_env, found)
            agreed = found.rate
        else:
            agreed = self.store.remember_cut(self.mturk_env, found)
        self._seen = self._written = LearnedCeiling(agreed, found.learned_at, found.learned_by)
        self._cut_written_at = found.learned_at
        if agreed != found.rate:
            self.limiter.agree(agreed)

    def _describes_my_last_cut(self, learned: LearnedCeiling) -> bool:
        """Another replica's cut, written so close to this one's that it was merged with it (remember_cut)."""
        mine = self._cut_written_at
        return mine is not None and abs(learned.learned_at - mine) <= SAME_OVERSHOOT_WITHIN

    def _has_risen(self, learned_rate: float, moment: datetime) -> bool:
        """MTurk accepted clearly more than last written (the first cut of a run undercounts): worth writing."""
        written = self._written
        if written is None:
            return True
        return learned_rate >= written.rate * 1.02 + 0.5 and moment - written.learned_at >= WRITE_EVERY

    def start(self) -> None:
        """Tick every TICK in a thread, and at once when the limiter starts work after idling, when it cuts, and
        when another replica announces a cut."""
        self.limiter.on_busy = self.limiter.on_cut = self._wake.set
        self._thread = threading.Thread(target=self._run, name="mturk-budget", daemon=True)
        self._thread.start()
        if self.news is not None:
            self._listener = threading.Thread(target=self._listen, name="mturk-budget-listener", daemon=True)
            self._listener.start()

    def _listen(self) -> None:
        assert self.news is not None
        while not self._stopping.is_set():
            try:
                self.news.listen(self._heard, self.listener)
            except Exception as error:  # the ticks still bring every cut, only later: keep listening
                log.warning("MTurk budget: listening for other replicas' cuts failed (%s)", type(error).__name__)
                self._stopping.wait(LISTEN_AGAIN_AFTER)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            try:
                self.tick()
            except SQLAlchemyError as error:
                log.warning("MTurk budget: the database did not answer (%s)", type(error).__name__)

    def stop(self) -> None:
        """Write down what is still unwritten and free this replica's share."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._listener is not None:
            self._listener.join(2)
        try:
            self.tick()
            if self.shared:
                self.store.check_out(self.replica_id)
        except SQLAlchemyError as error:
            log.warning("MTurk budget: the database did not answer at shutdown (%s)", type(error).__name__)
        if self.news is not None:
            self.news.close()
