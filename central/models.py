"""The central tables, as SQLAlchemy 2 typed ORM classes.

The registry: citizens (their civil-registry entry is a column of their row, as
are a death, a divorce, a change of name, a displacement and a driving licence
when the registry knows of one), family links (a spouse column, a parent-child
table), criminal records, educational qualifications, real estate and vehicles.
A few methods of :class:`Citizen` state a fact about the record (single, a clean
judicial record, no real estate, ...) as a value or None, so that a certificate
layout can require it.
The service: catalogue services, certificate requests (keyed by the kiosk's
request id, with the exact answer given), issued documents (each with the
id of the payment that paid for it, at the acquirer: central holds no
payment itself), and claims: documents asked for while a kiosk could not
reach central, awaiting collection by their citizen at any kiosk.

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
    date_of_death: Mapped[dt.date | None]
    place_of_death_ar: Mapped[str | None] = mapped_column(String(200))
    divorce_date: Mapped[dt.date | None]
    former_name_ar: Mapped[str | None] = mapped_column(String(200))
    name_changed_on: Mapped[dt.date | None]
    displaced_from_ar: Mapped[str | None] = mapped_column(String(200))
    driving_licence_number: Mapped[str | None] = mapped_column(String(20))
    driving_licence_grade: Mapped[str | None] = mapped_column(String(12))
    driving_licence_expires: Mapped[dt.date | None]

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
    qualifications: Mapped[list[Qualification]] = relationship(
        cascade="all, delete-orphan", order_by="Qualification.year")
    properties: Mapped[list[Property]] = relationship(cascade="all, delete-orphan", order_by="Property.id")
    vehicles: Mapped[list[Vehicle]] = relationship(cascade="all, delete-orphan", order_by="Vehicle.id")

    def __repr__(self) -> str:
        return "Citizen(<personal data withheld>)"

    def full_name_ar(self) -> str:
        return "%s %s" % (self.given_name_ar, self.family_name_ar)

    def latin_name(self) -> str | None:
        """The name in Latin letters, or None when the registry has none."""
        if self.given_name_latin is None or self.family_name_latin is None:
            return None
        return "%s %s" % (self.given_name_latin, self.family_name_latin)

    # Facts a layout may require: the fact as a value, or None when it does not hold.

    def single(self) -> str | None:
        """The marital status when the citizen has never married."""
        return self.marital_status if self.marital_status == "single" else None

    def divorced(self) -> str | None:
        return self.marital_status if self.marital_status == "divorced" else None

    def widowed(self) -> str | None:
        return self.marital_status if self.marital_status == "widowed" else None

    def heads_a_family(self) -> str | None:
        """The marital status when the citizen has a family of their own (a spouse or a child)."""
        return self.marital_status if self.spouse is not None or self.children else None

    def clean_record(self) -> str | None:
        """The word clean when the judicial record holds no conviction."""
        return None if self.criminal_records else "clean"

    def owns_no_property(self) -> str | None:
        """The word none when the real-estate register holds nothing in the citizen's name."""
        return None if self.properties else "none"

    def owns_no_vehicle(self) -> str | None:
        """The word none when no vehicle is registered in the citizen's name."""
        return None if self.vehicles else "none"

    def alive(self) -> str | None:
        """The word alive, unless the registry holds a death."""
        return "alive" if self.date_of_death is None else None


class CriminalRecord(Base):
    __tablename__ = "criminal_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    national_number: Mapped[str] = mapped_column(ForeignKey("citizens.national_number", ondelete="CASCADE"))
    date: Mapped[dt.date]
    court_ar: Mapped[str] = mapped_column(String(200))
    offence_ar: Mapped[str] = mapped_column(String(400))

    def __repr__(self) -> str:
        return "CriminalRecord(<personal data withheld>)"


class Qualification(Base):
    __tablename__ = "qualifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    national_number: Mapped[str] = mapped_column(ForeignKey("citizens.national_number", ondelete="CASCADE"))
    year: Mapped[int]
    certificate_ar: Mapped[str] = mapped_column(String(200))   # "الشهادة الثانوية - الفرع العلمي"
    institution_ar: Mapped[str] = mapped_column(String(200))

    def __repr__(self) -> str:
        return "Qualification(<personal data withheld>)"


class Property(Base):
    """A share of a plot in the real-estate register."""

    __tablename__ = "properties"

    id: Mapped[int] = mapped_column(primary_key=True)
    national_number: Mapped[str] = mapped_column(ForeignKey("citizens.national_number", ondelete="CASCADE"))
    area_ar: Mapped[str] = mapped_column(String(200))       # the real-estate area
    parcel: Mapped[str] = mapped_column(String(20))         # the plot's number in the area
    description_ar: Mapped[str] = mapped_column(String(200))
    shares: Mapped[str] = mapped_column(String(20))         # "1200/2400" of the plot's 2400 shares

    def __repr__(self) -> str:
        return "Property(<personal data withheld>)"


class Vehicle(Base):
    __tablename__ = "vehicles"

    id: Mapped[int] = mapped_column(primary_key=True)
    national_number: Mapped[str] = mapped_column(ForeignKey("citizens.national_number", ondelete="CASCADE"))
    plate_ar: Mapped[str] = mapped_column(String(40))
    make_ar: Mapped[str] = mapped_column(String(200))
    year: Mapped[int]

    def __repr__(self) -> str:
        return "Vehicle(<personal data withheld>)"


class CatalogueCategory(Base):
    __tablename__ = "catalogue_categories"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int]
    name_ar: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class CatalogueService(Base):
    __tablename__ = "catalogue_services"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int]
    name_ar: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    fee_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str] = mapped_column(String(64), default="")
    governorates: Mapped[str] = mapped_column(String(400), default="")   # codes joined with ",": "" everywhere
    rank: Mapped[int | None]                                              # among the most asked, 1 first


class ServiceOfflinePolicy(Base):
    """What a kiosk that cannot reach central may do for a service (kiosk.catalogue.OfflinePolicy):
    ``online_only``, or ``claim`` within a fee per payment and a daily cap per kiosk (minor units, in
    the service's currency). A service without a row is online only."""

    __tablename__ = "catalogue_offline_policies"

    code: Mapped[str] = mapped_column(ForeignKey("catalogue_services.code"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), default="online_only")
    max_fee_minor: Mapped[int] = mapped_column(default=0)
    daily_cap_minor: Mapped[int] = mapped_column(default=0)


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
    payment_id: Mapped[str] = mapped_column(String(64), unique=True)   # the acquirer's: pays for one document
    issued_at: Mapped[str] = mapped_column(String(20))
    document: Mapped[str] = mapped_column(Text)          # IssuedDocument.to_json()
    voided_at: Mapped[str | None] = mapped_column(String(20))


class ClaimRecord(Base):
    """A document asked for while the kiosk could not reach central (a claim): issued when the request
    arrived, it awaits collection by its citizen at any kiosk until one confirms it printed it."""

    __tablename__ = "claims"

    serial: Mapped[str] = mapped_column(ForeignKey("issued_documents.serial"), primary_key=True)
    national_number: Mapped[str] = mapped_column(ForeignKey("citizens.national_number"), index=True)
    reference: Mapped[str | None] = mapped_column(String(64))     # the claim slip's
    device_id: Mapped[str] = mapped_column(String(64))            # the kiosk that took the claim
    created_at: Mapped[str] = mapped_column(String(20))
    collected_at: Mapped[str | None] = mapped_column(String(20))
    collected_by: Mapped[str | None] = mapped_column(String(64))  # the kiosk that printed it

    def __repr__(self) -> str:
        return "ClaimRecord(serial=%s)" % self.serial


class Device(Base):
    """An enrolled kiosk: its id and its public key (Ed25519, raw 32 bytes, hex). The private key never
    left the kiosk. A revoked device is refused on every call until it is enrolled again."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[str] = mapped_column(String(20))
    revoked_at: Mapped[str | None] = mapped_column(String(20))
    last_seen_at: Mapped[str | None] = mapped_column(String(20))


class EnrolmentCode(Base):
    """A one-time enrolment code for one device id, kept only as its SHA-256; used once, before it expires."""

    __tablename__ = "enrolment_codes"

    code_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[str] = mapped_column(String(20))
    used_at: Mapped[str | None] = mapped_column(String(20))


class SeenSignature(Base):
    """A signature's nonce, kept while a signature of that age would still be taken: a replay is refused."""

    __tablename__ = "seen_signatures"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[int] = mapped_column(index=True)     # the signature's, seconds since the epoch


class CardChallenge(Base):
    """Central's challenge to the card in one kiosk's reader, single-use, expiring. Once a card signed it
    and central checked the signature, it is that card's proof of presence: the citizen's numbers are
    kept with it, and the one request it may pay for (``request_id``, bound at the first)."""

    __tablename__ = "card_challenges"

    challenge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))                  # hex of the 32 bytes the card signs
    device_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[str] = mapped_column(String(20))
    used_at: Mapped[str | None] = mapped_column(String(20))         # answered once, never again
    national_number: Mapped[str | None] = mapped_column(String(11))  # set once the card proved itself
    card_number: Mapped[str | None] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return "CardChallenge(challenge_id=%s)" % self.challenge_id
