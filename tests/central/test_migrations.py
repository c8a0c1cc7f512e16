"""Central's schema comes from its Alembic migrations (central/migrations/): migrated from nothing it is
the models' schema, it goes down to nothing and up again, and a database made before migrations (by
``create_all``) is stamped at the baseline and upgraded, its rows kept. On SQLite and PostgreSQL; and on
PostgreSQL, central's writers take their turn across processes as SQLite's file lock makes them."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from central import cli, db, migrate
from central.db import Database
from central.models import Base, CatalogueService, Device, ServiceOfflinePolicy
from central.seeding import prepare_database


def differences(db_url: str) -> list:
    """What the database's schema lacks or has beyond central's models (Alembic's autogenerate), each
    as the operation that would mend it and the names it concerns: ("add_table", "staff_accounts")."""
    def named(difference):  # a tuple, or a list of them for one column's changes
        if isinstance(difference, list):
            return [named(each) for each in difference]
        return tuple(getattr(part, "name", part) for part in difference)

    database = Database(db_url)
    try:
        with database.engine.connect() as connection:
            return [named(each) for each in compare_metadata(MigrationContext.configure(connection), Base.metadata)]
    finally:
        database.dispose()


def tables(db_url: str) -> set[str]:
    database = Database(db_url)
    try:
        return set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()


def test_a_new_database_migrated_to_head_has_the_models_schema(fresh_db_url: str) -> None:
    assert migrate.current(fresh_db_url) is None
    migrate.upgrade(fresh_db_url)
    assert migrate.current(fresh_db_url) == migrate.head()
    assert differences(fresh_db_url) == []


def test_downgrade_to_base_and_upgrade_again(fresh_db_url: str) -> None:
    migrate.upgrade(fresh_db_url)
    migrate.downgrade(fresh_db_url, "base")
    assert migrate.current(fresh_db_url) is None
    assert tables(fresh_db_url) <= {"alembic_version"}
    migrate.upgrade(fresh_db_url)
    assert migrate.current(fresh_db_url) == migrate.head()
    assert differences(fresh_db_url) == []


def test_a_database_made_before_migrations_is_stamped_and_upgraded(fresh_db_url: str) -> None:
    old = migrate.baseline_metadata()
    database = Database(fresh_db_url)
    try:
        # As create_all made it, before card challenges and offline policies existed, with a kiosk enrolled.
        old.create_all(database.engine, tables=[table for name, table in old.tables.items()
                                                if name not in ("card_challenges", "catalogue_offline_policies")])
        with database.engine.begin() as connection:   # in the old tables' terms, as the models may have moved on
            connection.execute(old.tables["devices"].insert().values(
                device_id="kiosk-old-01", public_key="ab" * 32, enrolled_at="2025-01-31T09:15:00Z"))
        assert migrate.current(fresh_db_url) is None
        prepare_database(database)
        with database.reading() as session:
            assert session.get(Device, "kiosk-old-01").enrolled_at == "2025-01-31T09:15:00Z"
            services = session.scalar(select(func.count()).select_from(CatalogueService))
            assert services > 0
            assert session.scalar(select(func.count()).select_from(ServiceOfflinePolicy)) == services
    finally:
        database.dispose()
    assert migrate.current(fresh_db_url) == migrate.head()
    assert differences(fresh_db_url) == []


def test_central_migrates_its_database_when_it_starts(fresh_db_url: str) -> None:
    database = Database(fresh_db_url)
    try:
        prepare_database(database)
        prepare_database(database)     # and again, at the next start: nothing to do
    finally:
        database.dispose()
    assert migrate.current(fresh_db_url) == migrate.head()
    assert differences(fresh_db_url) == []


def test_db_upgrade_and_current_commands(fresh_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["db", "current", "--db", fresh_db_url]) == 0
    assert capsys.readouterr().out == "none (head is %s)\n" % migrate.head()
    assert cli.main(["db", "upgrade", "--db", fresh_db_url]) == 0
    assert capsys.readouterr().out == "%s (head)\n" % migrate.head()
    assert cli.main(["db", "current", "--db", fresh_db_url]) == 0
    assert capsys.readouterr().out == "%s (head)\n" % migrate.head()


def test_while_central_writes_a_writer_of_another_process_waits_on_postgresql(postgres_server) -> None:
    """A `kiosk-central` command (another process, another Database) cannot write while central does."""
    with postgres_server.database() as db_url:
        central, command = Database(db_url), Database(db_url)
        try:
            def command_may_write() -> bool:
                with command.engine.begin() as connection:
                    return connection.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                             {"key": db._WRITER_LOCK_KEY})
            with central.writing():
                assert not command_may_write()
            assert command_may_write()
        finally:
            central.dispose()
            command.dispose()
