"""Central's schema, made and moved by Alembic (central/migrations/), configured here in code.

`upgrade` brings a database to the newest revision (or to `revision`), `current` tells its revision.
Central upgrades its database at every start (central/seeding.py's prepare_database), which is the one
way its tables are made. A database made before migrations, by ``create_all`` (central's tables, no
``alembic_version``), first gets whichever baseline tables it lacks and is stamped at the baseline.

On PostgreSQL the migration holds an advisory lock: two centrals starting on one database migrate it
one after the other.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from central.db import Database

log = logging.getLogger(__name__)
# Alembic tells every step at INFO, on every start; central logs what changed (migrate.upgraded).
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
_LOCK_KEY = 0x6B696F736B00   # pg_advisory_xact_lock's key for central's migrations (central/db.py: writers ...01)


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision."""
    return _scripts().get_current_head()


def baseline_metadata() -> MetaData:
    """The tables of the baseline revision, as it froze them."""
    return _scripts().get_revision(BASELINE).module.BASELINE


def _stamp_if_made_before_migrations(connection: Connection) -> None:
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return
    baseline = baseline_metadata()
    existing = set(inspect(connection).get_table_names()) & set(baseline.tables)
    if not existing:
        return   # an empty database: migrated from the start
    baseline.create_all(connection, checkfirst=True)    # a database from before some of them
    command.stamp(_config(connection), BASELINE)
    log.info("migrate.stamped_baseline tables_found=%d of=%d", len(existing), len(baseline.tables))


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of `engine` to `revision`, in one transaction where the database allows."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        _stamp_if_made_before_migrations(connection)
        before = MigrationContext.configure(connection).get_current_revision()
        if revision == "head" and before == head():
            return       # every start but the first after a new migration: nothing to do
        command.upgrade(_config(connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    if after != before:
        log.info("migrate.upgraded from=%s to=%s", before or "none", after)


def upgrade(db_url: str, revision: str = "head") -> None:
    """`kiosk-central db upgrade`."""
    database = Database(db_url)
    try:
        upgrade_engine(database.engine, revision)
    finally:
        database.dispose()


def downgrade(db_url: str, revision: str) -> None:
    """Undo migrations down to `revision` ("base": no table left). For tests and development."""
    database = Database(db_url)
    try:
        with database.engine.begin() as connection:
            command.downgrade(_config(connection), revision)
    finally:
        database.dispose()


def current(db_url: str) -> str | None:
    """The database's revision; None for a database never migrated."""
    database = Database(db_url)
    try:
        with database.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        database.dispose()
