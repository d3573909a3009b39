"""Everything that knows Slack: listeners, Block Kit builders, the messenger and the event delivery."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field

from slack_bolt import App

from bot.expiry import GrantExpiry
from bot.service import GrantService
from bot.slack.deadline import AckDeadline
from bot.slack.delivery import EventDelivery
from bot.slack.messenger import SlackMessenger


@dataclass(frozen=True)
class SlackContext:
    """What the listeners work with."""

    service: GrantService
    messenger: SlackMessenger
    delivery: EventDelivery
    max_workers: int
    # Work a listener does after its ack (checking with MTurk, posting), off Bolt's listener threads.
    after_ack: Executor
    expiry: GrantExpiry | None = None  # Extend and Revoke now on an expiring grant's message
    reject_reason_required: bool = False  # REJECT_REASON_REQUIRED: Reject's modal insists on a reason
    # Work a listener must do before its ack (the grant modal's file and storing), waited for within Slack's window.
    ack_deadline: AckDeadline = field(default_factory=AckDeadline)


def register(app: App, context: SlackContext) -> None:
    """Attach every listener to the Bolt app."""
    from bot.slack import actions, commands, expiry, home, qualification_lookups, replays, shortcuts, views

    replays.register(app, context.service.store)
    commands.register(app, context)
    views.register(app, context)
    actions.register(app, context)
    qualification_lookups.register(app, context)
    expiry.register(app, context)
    home.register(app, context)
    shortcuts.register(app, context)
