"""The catalogue as central stores it: services in a fixed order, fees in minor units."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.models import CatalogueService
from kiosk.catalogue import Catalogue, Service
from kiosk.money import Money


def _service(row: CatalogueService) -> Service:
    return Service(code=row.code, names={"ar": row.name_ar, "en": row.name_en},
                   fee=Money.of(row.fee_minor, row.currency))


def load_catalogue(session: Session) -> Catalogue:
    rows = session.scalars(select(CatalogueService).order_by(CatalogueService.position))
    return Catalogue(services=tuple(_service(row) for row in rows))


def find_service(session: Session, code: str) -> Service | None:
    row = session.get(CatalogueService, code)
    return None if row is None else _service(row)


def save_catalogue(session: Session, catalogue: Catalogue) -> None:
    """Store `catalogue` in its order, replacing services of the same code."""
    for position, service in enumerate(catalogue.services):
        session.merge(CatalogueService(code=service.code, position=position, name_ar=service.names["ar"],
                                       name_en=service.names["en"], fee_minor=service.fee.amount_minor,
                                       currency=service.fee.currency))
