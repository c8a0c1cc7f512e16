"""A new database gets its tables (it is migrated: central/migrate.py), the catalogue (categories,
services and their offline policies) and the fictional citizens; a database from before offline
policies gets the seed's.

A database from the days when central simulated the payment gateway tied each
issued document's payment id to a row of its `gateway_charges` table; payments
are now the acquirer's, so that link is taken off (SQLite: the table is
rebuilt, its rows kept). The gateway's old tables are left as they are.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.schema import CreateTable

from central import migrate
from central.catalogue_store import save_catalogue, save_offline_policies
from central.db import Database
from central.models import CatalogueService, Citizen, IssuedDocumentRecord, ServiceOfflinePolicy
from central.registry import import_citizens, load_registry_file
from kiosk.catalogue import Catalogue

log = logging.getLogger(__name__)

SEED_DIR = Path(__file__).with_name("seed")


def _unlink_gateway_charges(database: Database) -> None:
    """Take the link from issued documents to the old gateway's charges off, keeping every row."""
    inspector = inspect(database.engine)
    if "issued_documents" not in inspector.get_table_names() or not any(
            key["referred_table"] == "gateway_charges" for key in inspector.get_foreign_keys("issued_documents")):
        return
    if database.engine.dialect.name != "sqlite":
        raise RuntimeError("issued_documents.payment_id still refers to gateway_charges: drop that foreign key "
                           "(payments are the acquirer's now)")
    table = IssuedDocumentRecord.__table__
    columns = ", ".join(column.name for column in table.columns)
    create = str(CreateTable(table).compile(dialect=database.engine.dialect)).strip()
    raw = database.engine.raw_connection()
    try:
        # One script, one transaction: the table is renamed, made again without the link, and refilled.
        raw.driver_connection.executescript(
            "PRAGMA foreign_keys=OFF; BEGIN;"
            " ALTER TABLE issued_documents RENAME TO issued_documents_before_acquirer;"
            " %s;"
            " INSERT INTO issued_documents (%s) SELECT %s FROM issued_documents_before_acquirer;"
            " DROP TABLE issued_documents_before_acquirer;"
            " COMMIT; PRAGMA foreign_keys=ON;" % (create, columns, columns))
    except BaseException:
        raw.invalidate()          # never back to the pool with a transaction open or foreign keys off
        raise
    finally:
        raw.close()
    log.info("migrate.issued_documents_unlinked_from_gateway")


def prepare_database(database: Database) -> None:
    """Migrate the database to the newest schema; seed the catalogue and the citizens where they are empty."""
    _unlink_gateway_charges(database)
    migrate.upgrade_engine(database.engine)
    with database.reading() as session:
        has_services = session.scalar(select(func.count()).select_from(CatalogueService)) > 0
        has_citizens = session.scalar(select(func.count()).select_from(Citizen)) > 0
        has_policies = session.scalar(select(func.count()).select_from(ServiceOfflinePolicy)) > 0
        stored = set(session.scalars(select(CatalogueService.code)))
    if has_services and not has_policies:
        # A database from before offline policies: the seed's, for the services it has.
        seeded = Catalogue.from_json(json.loads((SEED_DIR / "catalogue.json").read_text(encoding="utf-8")))
        with database.writing() as session:
            save_offline_policies(session, Catalogue(tuple(s for s in seeded.services if s.code in stored)))
        log.info("seed.offline_policies")
    if not has_services:
        catalogue = Catalogue.from_json(json.loads((SEED_DIR / "catalogue.json").read_text(encoding="utf-8")))
        with database.writing() as session:
            save_catalogue(session, catalogue)
        log.info("seed.catalogue services=%d categories=%d", len(catalogue.services), len(catalogue.categories))
    if not has_citizens:
        summary = import_citizens(database, load_registry_file(SEED_DIR / "citizens.json"))
        log.info("seed.citizens created=%d", summary.created)
