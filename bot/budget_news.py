"""How replicas tell each other at once of an overshoot of the account's MTurk limit (bot/budget.py decides
what they do with it): PostgreSQL NOTIFY, heard by LISTEN.

A cut that waits for the next tick of the budget's table comes half a second late, while the others go on at
the old pace into MTurk's full second. Each replica keeps two connections outside the pool: one to announce
(one round trip), one to listen. NOTIFY channels are the database's, not a schema's, so each payload
carries the schema and a listener keeps only its own deployment's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Event
from typing import Any, Protocol

from sqlalchemy import Engine

log = logging.getLogger(__name__)

CUTS_CHANNEL = "grant_qual_mturk_cuts"


@dataclass(frozen=True)
class CutNews:
    """What replicas tell each other at once about an overshoot of the account's limit.

    "cut": `replica_id` was throttled; `count` is the calls it had MTurk accept in the second before, and
    `ceiling` its estimate of the account's limit (count × share). "agreed": the replicas' counts for that
    second added up, the account's limit. `sent_at` names the overshoot: when the throttled call was sent
    (seconds since the epoch; replicas' clocks agree to milliseconds on one machine, and under NTP).
    """

    kind: str
    mturk_env: str
    replica_id: str
    sent_at: float
    count: int
    ceiling: float

    def encode(self) -> str:
        return f"{self.kind} {self.mturk_env} {self.replica_id} {self.sent_at!r} {self.count} {self.ceiling!r}"

    @classmethod
    def decode(cls, payload: str) -> CutNews | None:
        try:
            kind, mturk_env, replica_id, sent_at, count, ceiling = payload.split(" ")
            return cls(kind, mturk_env, replica_id, float(sent_at), int(count), float(ceiling))
        except ValueError:
            return None  # not ours (another version of the app on the same database): the ticks still bring cuts


@dataclass(frozen=True)
class Listener:
    """What a replica listening for other replicas' news shares with the thread that listens."""

    stop: Event
    listening: Event = field(default_factory=Event)  # set while news is heard at once


class NewsChannel(Protocol):
    def announce(self, news: str) -> None:
        """Tell the replicas listening, at once (an encoded CutNews). Best effort: never raises."""
        ...

    def listen(self, heard: Callable[[str], None], listener: Listener) -> None:
        """Call `heard` with each announcement (this replica's own too) until `listener.stop` is set."""
        ...

    def close(self) -> None:
        """Close what `announce` keeps open."""
        ...


class PostgresNews:
    """NewsChannel on PostgreSQL NOTIFY and LISTEN, within the engine's schema."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._announcing = threading.Lock()
        self._announcer: Any = None  # the psycopg connection announcements go on, opened at the first one

    def announce(self, news: str) -> None:
        """One round trip on a connection kept for it, where a pooled connection costs four (ping, BEGIN,
        NOTIFY, COMMIT) while the others send into a full second. If it fails, the others still find the cut
        in the budget's table at their next tick."""
        with self._announcing:
            try:
                if self._announcer is None:
                    self._announcer = self._connection_of_its_own()
                self._announcer.execute("SELECT pg_notify(%s, current_schema() || ' ' || %s)", (CUTS_CHANNEL, news))
            except Exception as error:
                log.warning("MTurk budget: the cut could not be announced (%s)", type(error).__name__)
                self._close_announcer()

    def listen(self, heard: Callable[[str], None], listener: Listener) -> None:
        connection = self._connection_of_its_own()
        try:
            ours = f"{connection.execute('SELECT current_schema()').fetchone()[0]} "
            connection.execute(f"LISTEN {CUTS_CHANNEL}")
            listener.listening.set()
            while not listener.stop.is_set():
                for notice in connection.notifies(timeout=1.0):  # at least once a second: is it time to stop?
                    if notice.payload.startswith(ours):
                        heard(notice.payload.removeprefix(ours))
        finally:
            listener.listening.clear()
            connection.close()

    def close(self) -> None:
        with self._announcing:
            self._close_announcer()

    def _close_announcer(self) -> None:
        announcer, self._announcer = self._announcer, None
        if announcer is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing left to do
                announcer.close()

    def _connection_of_its_own(self) -> Any:
        """A psycopg connection in autocommit, out of the pool (held for as long as the replica runs)."""
        raw = self.engine.raw_connection()
        connection = raw.driver_connection
        raw.detach()
        connection.rollback()  # outside a transaction: LISTEN hears, and NOTIFY is sent, at once
        connection.autocommit = True
        return connection
