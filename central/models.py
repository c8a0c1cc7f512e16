"""The central tables, as SQLAlchemy 2 typed ORM classes.

The registry: citizens (their civil-registry entry is a column of their row),
family links (a spouse column, a parent-child table), criminal records.
The service: catalogue services, certificate requests (keyed by the kiosk's
request id, with the exact answer given), issued documents. The gateway
simulator: charges and refunds.

Rows of the registry hold personal data: their ``repr`` never shows it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


kinship = Table(
    "kinship", Base.metadata,
    Column("parent_number", ForeignKey("citizens.national_number", ondelete="CASCADE"), primary_key=True),
    Column("child_number", ForeignKey("citizens.national_number", ondelete="CASCADE"), primary_key=True),
)


class Citizen(Base):
    __tablename__ = "citizens"

    national_number: Mapped[str] = mapped_column(String(11), primary_key=True)
    card_number: Mapped[str] = mapped_column(String(12), unique=True)
    given_name_ar: Mapped[str] = mapped_column(String(200))
    family_name_ar: Mapped[str] = mapped_column(String(200))
    given_name_latin: Mapped[str | None] = mapped_column(String(200))
    family_name_latin: Mapped[str | None] = mapped_column(String(200))
    father_name_ar: Mapped[str] = mapped_column(String(200))
    mother_name_ar: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[dt.date]
    place_of_birth_ar: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str] = mapped_column(String(1))
    civil_registry_ar: Mapped[str] = mapped_column(String(200))
    card_issued: Mapped[dt.date]
    card_expires: Mapped[dt.date]
    marital_status: Mapped[str] = mapped_column(String(10))
    spouse_number: Mapped[str | None] = mapped_column(ForeignKey("citizens.national_number"))
    marriage_date: Mapped[dt.date | None]
    address_ar: Mapped[str] = mapped_column(String(400))

    spouse: Mapped[Citizen | None] = relationship(
        remote_side=[national_number], foreign_keys=[spouse_number], post_update=True)
    children: Mapped[list[Citizen]] = relationship(
        secondary=kinship, primaryjoin=national_number == kinship.c.parent_number,
        secondaryjoin=national_number == kinship.c.child_number, back_populates="parents",
        order_by="Citizen.date_of_birth")
    parents: Mapped[list[Citizen]] = relationship(
        secondary=kinship, primaryjoin=national_number == kinship.c.child_number,
        secondaryjoin=national_number == kinship.c.parent_number, back_populates="children",
        order_by="Citizen.sex.desc()")  # the father first
    criminal_records: Mapped[list[CriminalRecord]] = relationship(
        cascade="all, delete-orphan", order_by="CriminalRecord.date")

    def __repr__(self) -> str:
        return "Citizen(<personal data withheld>)"

    def full_name_ar(self) -> str:
        return "%s %s" % (self.given_name_ar, self.family_name_ar)


class CriminalRecord(Base):
    __tablename__ = "criminal_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    national_number: Mapped[str] = mapped_column(ForeignKey("citizens.national_number", ondelete="CASCADE"))
    date: Mapped[dt.date]
    court_ar: Mapped[str] = mapped_column(String(200))
    offence_ar: Mapped[str] = mapped_column(String(400))

    def __repr__(self) -> str:
        return "CriminalRecord(<personal data withheld>)"


class CatalogueService(Base):
    __tablename__ = "catalogue_services"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int]
    name_ar: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    fee_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))


class CertificateRequest(Base):
    """A kiosk's request, answered once: a retry gets ``answer`` back as it was.

    ``body_digest`` is None for a request voided before it ever arrived: any
    later delivery of that id is refused.
    """

    __tablename__ = "certificate_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    body_digest: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))     # issued | rejected | voided
    http_status: Mapped[int]
    answer: Mapped[str] = mapped_column(Text)            # the exact JSON answer
    created_at: Mapped[str] = mapped_column(String(20))
    voided_at: Mapped[str | None] = mapped_column(String(20))


class IssuedDocumentRecord(Base):
    __tablename__ = "issued_documents"

    serial: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("certificate_requests.request_id"), unique=True)
    service_code: Mapped[str] = mapped_column(String(64))
    national_number: Mapped[str] = mapped_column(ForeignKey("citizens.national_number"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("gateway_charges.payment_id"), unique=True)
    issued_at: Mapped[str] = mapped_column(String(20))
    document: Mapped[str] = mapped_column(Text)          # IssuedDocument.to_json()
    voided_at: Mapped[str | None] = mapped_column(String(20))


class GatewayCharge(Base):
    __tablename__ = "gateway_charges"

    payment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(64), unique=True)
    body_digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))     # approved | declined
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    device_id: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(20))

    refunds: Mapped[list[GatewayRefund]] = relationship(order_by="GatewayRefund.created_at")

    def refunded_minor(self) -> int:
        return sum(r.amount_minor for r in self.refunds)


class GatewayRefund(Base):
    __tablename__ = "gateway_refunds"

    refund_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("gateway_charges.payment_id"))
    body_digest: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[str] = mapped_column(String(20))
