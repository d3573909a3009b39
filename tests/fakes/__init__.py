"""Wire-level fakes of the services grant-qual talks to: MTurk's Requester API and Slack's Web API."""

from tests.fakes.mturk import FakeMTurk, Grant
from tests.fakes.slack import FakeSlack, SlackCall

__all__ = ["FakeMTurk", "FakeSlack", "Grant", "SlackCall"]
