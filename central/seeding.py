"""A new database gets its tables, the catalogue (categories and services) and the fictional citizens."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sqlalchemy import func, select

from central.catalogue_store import save_catalogue
from central.db import Database
from central.models import CatalogueService, Citizen
from central.registry import import_citizens, load_registry_file
from kiosk.catalogue import Catalogue

log = logging.getLogger(__name__)

SEED_DIR = Path(__file__).with_name("seed")


def prepare_database(database: Database) -> None:
    """Create missing tables; seed the catalogue and the citizens where they are empty."""
    database.create_tables()
    with database.reading() as session:
        has_services = session.scalar(select(func.count()).select_from(CatalogueService)) > 0
        has_citizens = session.scalar(select(func.count()).select_from(Citizen)) > 0
    if not has_services:
        catalogue = Catalogue.from_json(json.loads((SEED_DIR / "catalogue.json").read_text(encoding="utf-8")))
        with database.writing() as session:
            save_catalogue(session, catalogue)
        log.info("seed.catalogue services=%d categories=%d", len(catalogue.services), len(catalogue.categories))
    if not has_citizens:
        summary = import_citizens(database, load_registry_file(SEED_DIR / "citizens.json"))
        log.info("seed.citizens created=%d", summary.created)
