"""Alembic's environment for central: it runs on the connection central/migrate.py hands it.

Alembic is configured in code (central/migrate.py), with no alembic.ini: `kiosk-central db upgrade`
migrates a database, and central migrates its own at start.
"""

from __future__ import annotations

from alembic import context

from central.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("central's migrations run through central/migrate.py (`kiosk-central db upgrade`)")

# render_as_batch: SQLite alters a table by making it again, which autogenerate then writes out.
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
