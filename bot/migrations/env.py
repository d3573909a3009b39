"""Alembic environment: runs on the connection the app hands over (see bot.store.upgrade_schema)."""

from alembic import context

import bot.budget  # noqa: F401  (its tables join the metadata)
from bot.store import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
