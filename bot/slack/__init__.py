"""Everything that knows Slack: listeners, Block Kit builders, and the messenger that posts."""

from __future__ import annotations

from slack_bolt import App

from bot.service import GrantService
from bot.slack import actions, commands, views
from bot.slack.messenger import SlackMessenger


def register(app: App, service: GrantService, messenger: SlackMessenger, *, max_workers: int) -> None:
    """Attach every listener to the Bolt app."""
    commands.register(app, service, messenger, max_workers)
    views.register(app, service, messenger, max_workers)
    actions.register(app, service, messenger)
