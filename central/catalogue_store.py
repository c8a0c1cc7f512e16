"""The catalogue as central stores it: categories and services in a fixed order, fees in minor units.

A service's governorates are stored as their codes joined with commas (empty:
offered everywhere); its rank among the most asked is None for a service that
is not on the first screen; its offline policy (online only, or a claim within
a fee and a daily cap) is a row of its own, none meaning online only.

The catalogue's version is the first 16 hex digits of the SHA-256 of its
canonical JSON (what the catalogue endpoint serves, less the version): any
change of a service, a fee, where a service is offered, a rank or a category
gives another version, and the same catalogue always the same one. The
kiosk names the version it shows when it asks before a charge. The
endpoint serves it signed (central/signing.py, `sign_catalogue`), with the
time it was served, so that a kiosk may keep it and tell how old it is.

Fees live in the database (seeded once from ``seed/catalogue.json``), so
central's staff change them there (`kiosk-central catalogue set-fee`).
"""

from __future__ import annotations

import dataclasses
import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.models import CatalogueCategory, CatalogueService, ServiceOfflinePolicy
from central.wire import canonical_json
from kiosk.catalogue import Catalogue, Category, OfflineMode, OfflinePolicy, Service
from kiosk.money import Money

VERSION_LENGTH = 16


def _service(row: CatalogueService, policy: ServiceOfflinePolicy | None) -> Service:
    return Service(code=row.code, names={"ar": row.name_ar, "en": row.name_en},
                   fee=Money.of(row.fee_minor, row.currency), category=row.category,
                   governorates=tuple(code for code in row.governorates.split(",") if code), rank=row.rank,
                   offline=_policy(policy))


def _policy(row: ServiceOfflinePolicy | None) -> OfflinePolicy:
    if row is None or row.mode != OfflineMode.CLAIM.value:
        return OfflinePolicy()
    return OfflinePolicy(OfflineMode.CLAIM, row.max_fee_minor, row.daily_cap_minor)


def _category(row: CatalogueCategory) -> Category:
    return Category(code=row.code, names={"ar": row.name_ar, "en": row.name_en})


def catalogue_version(catalogue: Catalogue) -> str:
    """The version of `catalogue`'s content (its own `version` aside)."""
    return hashlib.sha256(canonical_json(catalogue.to_json())).hexdigest()[:VERSION_LENGTH]


def load_catalogue(session: Session) -> Catalogue:
    """The catalogue as stored, with its version."""
    services = session.scalars(select(CatalogueService).order_by(CatalogueService.position))
    categories = session.scalars(select(CatalogueCategory).order_by(CatalogueCategory.position))
    policies = {row.code: row for row in session.scalars(select(ServiceOfflinePolicy))}
    catalogue = Catalogue(services=tuple(_service(row, policies.get(row.code)) for row in services),
                          categories=tuple(_category(row) for row in categories))
    return dataclasses.replace(catalogue, version=catalogue_version(catalogue))


def served_catalogue(catalogue: Catalogue, *, issued_at: str) -> dict:
    """The catalogue endpoint's answer before it is signed: the catalogue's JSON, its version, and
    when it was served (``2026-01-31T09:15:00Z``), which the signature then covers."""
    return {**catalogue.to_json(), "version": catalogue.version, "issued_at": issued_at}


def find_service(session: Session, code: str) -> Service | None:
    row = session.get(CatalogueService, code)
    return None if row is None else _service(row, session.get(ServiceOfflinePolicy, code))


def set_fee(session: Session, code: str, amount_minor: int) -> tuple[Money, Money] | None:
    """Charge `amount_minor` (in the service's currency) for service `code` from now on:
    the fee before and after, or None when there is no such service."""
    row = session.get(CatalogueService, code)
    if row is None:
        return None
    before = Money.of(row.fee_minor, row.currency)
    after = Money.of(amount_minor, row.currency)
    row.fee_minor = amount_minor
    return before, after


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
    save_offline_policies(session, catalogue)


def save_offline_policies(session: Session, catalogue: Catalogue) -> None:
    """Store the offline policy of each of `catalogue`'s services (their services stored already)."""
    session.flush()
    for service in catalogue.services:
        policy = service.offline
        session.merge(ServiceOfflinePolicy(code=service.code, mode=policy.mode.value,
                                           max_fee_minor=policy.max_fee_minor, daily_cap_minor=policy.daily_cap_minor))
