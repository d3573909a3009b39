"""The schema comes from Alembic migrations, matches the code's tables, and upgrading keeps data."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.requests import GrantSpec, WorkerTarget
from bot.store import GrantStore, create_database_engine, metadata


def test_migrations_build_exactly_the_tables_the_code_uses(any_database_url: str) -> None:
    store = GrantStore(create_database_engine(any_database_url))
    store.upgrade_schema()
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_upgrading_again_keeps_every_record(any_database_url: str) -> None:
    store = GrantStore(create_database_engine(any_database_url))
    store.upgrade_schema()
    spec = GrantSpec("3QUAL0000000000000001", (WorkerTarget("A1WORKER00001", 4),), True, "kept")
    store.create_request(spec, requester_id="U0REQ", mturk_env="sandbox", qualification_name="Q")
    store.engine.dispose()

    again = GrantStore(create_database_engine(any_database_url))
    again.upgrade_schema()
    request = again.get(1)
    assert request is not None and request.reason == "kept"
    assert [o.worker_id for o in again.outcomes(1)] == ["A1WORKER00001"]
