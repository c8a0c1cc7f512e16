"""The catalogue as central stores it: categories and services in a fixed order, fees in minor units.

A service's governorates are stored as their codes joined with commas (empty:
offered everywhere); its rank among the most asked is None for a service that
is not on the first screen.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.models import CatalogueCategory, CatalogueService
from kiosk.catalogue import Catalogue, Category, Service
from kiosk.money import Money


def _service(row: CatalogueService) -> Service:
    return Service(code=row.code, names={"ar": row.name_ar, "en": row.name_en},
                   fee=Money.of(row.fee_minor, row.currency), category=row.category,
                   governorates=tuple(code for code in row.governorates.split(",") if code), rank=row.rank)


def _category(row: CatalogueCategory) -> Category:
    return Category(code=row.code, names={"ar": row.name_ar, "en": row.name_en})


def load_catalogue(session: Session) -> Catalogue:
    services = session.scalars(select(CatalogueService).order_by(CatalogueService.position))
    categories = session.scalars(select(CatalogueCategory).order_by(CatalogueCategory.position))
    return Catalogue(services=tuple(_service(row) for row in services),
                     categories=tuple(_category(row) for row in categories))


def find_service(session: Session, code: str) -> Service | None:
    row = session.get(CatalogueService, code)
    return None if row is None else _service(row)


def save_catalogue(session: Session, catalogue: Catalogue) -> None:
    """Store `catalogue` in its order, replacing categories and services of the same code."""
    for position, category in enumerate(catalogue.categories):
        session.merge(CatalogueCategory(code=category.code, position=position, name_ar=category.names["ar"],
                                        name_en=category.names["en"]))
    for position, service in enumerate(catalogue.services):
        session.merge(CatalogueService(code=service.code, position=position, name_ar=service.names["ar"],
                                       name_en=service.names["en"], fee_minor=service.fee.amount_minor,
                                       currency=service.fee.currency, category=service.category,
                                       governorates=",".join(service.governorates), rank=service.rank))
