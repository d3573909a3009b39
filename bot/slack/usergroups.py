"""Who is in the Slack user groups the allowlists name: read from Slack, kept fresh, for bot/policy.py.

Members come from `usergroups.users.list`, handles (`@mturk-approvers`) from `usergroups.list` (both need the
usergroups:read scope). They are read at start, again when Slack says a group changed (the
`subteam_members_changed` and `subteam_updated` events, over HTTP or Socket Mode), and every `interval` seconds
as a fallback for a missed event. Until a group's members have been read once it admits nobody (fail closed);
a later failed read keeps the members last read, and is tried again sooner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300.0  # the fallback refresh; events normally bring changes within seconds
RETRY_SECONDS = 30.0  # after a failed refresh


class SlackUserGroups:
    """The `Membership` of bot/policy.py, over Slack's user groups; safe to read from any thread."""

    def __init__(
        self,
        client: WebClient,
        group_ids: Iterable[str],
        *,
        interval: float = REFRESH_SECONDS,
        retry_interval: float = RETRY_SECONDS,
    ) -> None:
        self.client = client
        self.group_ids = frozenset(group_ids)
        self._interval = interval
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._members: dict[str, frozenset[str]] = {}
        self._handles: dict[str, str] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def members(self, group_id: str) -> frozenset[str] | None:
        with self._lock:
            return self._members.get(group_id)

    def handle(self, group_id: str) -> str | None:
        with self._lock:
            return self._handles.get(group_id)

    def refresh(self, group_ids: Iterable[str] | None = None) -> bool:
        """Read the members of these groups (all by default) and every handle; False when any read failed."""
        wanted = self.group_ids if group_ids is None else self.group_ids & set(group_ids)
        if not wanted:
            return True
        ok = self._refresh_handles()
        for group_id in sorted(wanted):
            ok = self._refresh_members(group_id) and ok
        return ok

    def _refresh_members(self, group_id: str) -> bool:
        try:
            users = self.client.usergroups_users_list(usergroup=group_id).get("users") or []
        except SlackApiError as error:
            reason = error.response.get("error")
            if reason == "no_such_subteam":  # the group is gone: nobody is in it
                log.warning("Slack user group %s does not exist; it admits nobody", group_id)
                with self._lock:
                    self._members[group_id] = frozenset()
                return True
            return self._failed(group_id, str(reason))
        except (SlackClientError, OSError) as error:
            return self._failed(group_id, type(error).__name__)
        with self._lock:
            self._members[group_id] = frozenset(str(user) for user in users)
        return True

    def _failed(self, group_id: str, reason: str) -> bool:
        with self._lock:
            known = group_id in self._members
        outcome = "keeping the members last read" if known else "it admits nobody until it can be read"
        log.warning("could not read the members of Slack user group %s (%s); %s", group_id, reason, outcome)
        return False

    def _refresh_handles(self) -> bool:
        try:
            groups: list[dict[str, Any]] = self.client.usergroups_list(include_disabled=True).get("usergroups") or []
        except (SlackClientError, OSError):
            return False  # the members matter; a handle only makes refusals read better
        with self._lock:
            for group in groups:
                if group.get("id") in self.group_ids and group.get("handle"):
                    self._handles[str(group["id"])] = str(group["handle"])
        return True

    def listen(self, app: App) -> None:
        """Refresh a group when Slack says it changed (Bolt acknowledges events before the listener runs)."""

        @app.event("subteam_members_changed")
        def members_changed(event: dict[str, Any]) -> None:
            self.refresh([str(event.get("subteam_id", ""))])

        @app.event("subteam_updated")
        def group_updated(event: dict[str, Any]) -> None:
            subteam = event.get("subteam")
            self.refresh([str(subteam.get("id", ""))] if isinstance(subteam, dict) else [])

    def start(self) -> None:
        """Read every group now (one log line if Slack cannot be asked), then refresh in the background."""
        if not self.group_ids:
            return
        if not self.refresh():
            log.warning("Slack user groups could not all be read at start; members of those are refused until then")

        def loop() -> None:
            ok = True
            while not self._stopping.wait(self._interval if ok else self._retry_interval):
                try:
                    ok = self.refresh()
                except Exception:
                    log.exception("refreshing Slack user groups failed; will try again")
                    ok = False

        self._thread = threading.Thread(target=loop, name="user-groups", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout)
