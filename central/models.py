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
    governorate: Mapped[str | None] = mapped_column(String(64))      # set with its enrolment code (TELEMETRY)


class EnrolmentCode(Base):
    """A one-time enrolment code for one device id, kept only as its SHA-256; used once, before it expires."""

    __tablename__ = "enrolment_codes"

    code_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[str] = mapped_column(String(20))
    used_at: Mapped[str | None] = mapped_column(String(20))
    governorate: Mapped[str | None] = mapped_column(String(64))      # given to the device it enrols (TELEMETRY)


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


# --- Staff dashboard (DASHBOARD): central's staff accounts, their sessions, and what they did ---------


class StaffAccount(Base):
    """A member of central's staff: a role (publisher, operator, viewer), a password kept as its salted
    scrypt hash (central/dashboard/passwords.py), a TOTP secret for the second factor, and the count of
    failures since the last success that locks the account for a while. Its repr shows no secret."""

    __tablename__ = "staff_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str] = mapped_column(String(64))
    totp_last_step: Mapped[int | None]                          # the 30 s step of the last code taken
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[str] = mapped_column(String(20))
    disabled_at: Mapped[str | None] = mapped_column(String(20))

    def __repr__(self) -> str:
        return "StaffAccount(username=%s, role=%s)" % (self.username, self.role)


class StaffSession(Base):
    """A signed-in browser: the SHA-256 of the random token in its cookie (the token itself is never
    kept), the form token its forms carry, its language, and when it began and was last used."""

    __tablename__ = "staff_sessions"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("staff_accounts.username", ondelete="CASCADE"), index=True)
    second_factor_at: Mapped[str | None] = mapped_column(String(20))   # None: the password only, so far
    csrf_token: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[str] = mapped_column(String(20))
    last_seen_at: Mapped[str] = mapped_column(String(20))

    def __repr__(self) -> str:
        return "StaffSession(username=%s)" % self.username


class StaffAuditEntry(Base):
    """One thing a member of staff did, or tried: a sign-in, a refused one, every form sent."""

    __tablename__ = "staff_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[str] = mapped_column(String(20), index=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)   # None: no account had the name
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))                       # ok | failed | refused
    detail: Mapped[str] = mapped_column(String(200), default="")


# --- Telemetry (TELEMETRY): what each kiosk reports, kept by central (central/telemetry.py) -------------


class _HeartbeatFacts:
    """What a heartbeat says (kiosk/telemetry.py), codes and counts only: the facts the dashboard filters on
    as columns, the rest (each device's status, memory, the last error) as JSON text."""

    device_id: Mapped[str] = mapped_column(String(64), index=True)
    received_at: Mapped[str] = mapped_column(String(20), index=True)   # central's clock
    sent_at: Mapped[str] = mapped_column(String(24))                   # the kiosk's
    state: Mapped[str] = mapped_column(String(16), index=True)         # ready | busy | offline | out_of_service | fault
    reason: Mapped[str | None] = mapped_column(String(64))             # why out of service (a code)
    version: Mapped[str] = mapped_column(String(64))
    paper: Mapped[str] = mapped_column(String(8))                      # ok | low | out
    door: Mapped[str] = mapped_column(String(8))                       # closed | open
    queue_depth: Mapped[int]
    dead_letters: Mapped[int]
    last_sync_at: Mapped[str | None] = mapped_column(String(24))
    disk_free_mb: Mapped[int | None]
    facts: Mapped[str] = mapped_column(Text)                           # JSON: devices, memory, last error


class KioskHeartbeat(_HeartbeatFacts, Base):
    """Every heartbeat received, kept for the history (pruned after `serve --telemetry-days`)."""

    __tablename__ = "kiosk_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)


class KioskStatus(_HeartbeatFacts, Base):
    """Each kiosk's latest heartbeat: one row per device, replaced by each heartbeat (the dashboard's)."""

    __tablename__ = "kiosk_status"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)


class KioskAlert(Base):
    """An alert a kiosk raised (a code, when): kept once however often the kiosk sent it."""

    __tablename__ = "kiosk_alerts"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    raised_at: Mapped[str] = mapped_column(String(24), primary_key=True)   # the kiosk's clock, to the millisecond
    received_at: Mapped[str] = mapped_column(String(20), index=True)


class KioskAuditEntry(Base):
    """A kiosk's audit log entry (kiosk/ports/audit.py), as shipped: each device's entries form one hash
    chain, checked by central as they arrive; never pruned (central's copy is the one away from the kiosk)."""

    __tablename__ = "kiosk_audit_entries"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(24))
    event: Mapped[str] = mapped_column(String(64))
    technician: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[str] = mapped_column(String(20))


class KioskSelftest(Base):
    """A self-test report a kiosk sent (`kiosk selftest --json --report`), kept for the history."""

    __tablename__ = "kiosk_selftests"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    checked_at: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[str] = mapped_column(String(20), index=True)
    ok: Mapped[bool]
    failed: Mapped[str] = mapped_column(String(200))                   # the failed checks' names, joined with ","
    checks: Mapped[str] = mapped_column(Text)                          # JSON: name, status, detail, seconds


# --- Commands and announcements (COMMANDS): central/commands.py, central/announcements.py ---------------


class KioskCommand(Base):
    """One command to one kiosk (`kiosk-central command send`): its signed envelope is made when it first
    rides in the kiosk's heartbeat answer and kept as sent. `state`: sent, delivered (it rode in an
    answer), done or refused (the kiosk's result, with its reason code); one past `expires_at` without a
    result is shown as expired."""

    __tablename__ = "kiosk_commands"

    command_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), index=True)          # the one `command send` it came from
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[str] = mapped_column(String(20))
    issued_by: Mapped[str | None] = mapped_column(String(64))             # a member of staff, when known
    state: Mapped[str] = mapped_column(String(16), index=True)
    envelope: Mapped[str | None] = mapped_column(Text)                    # the signed JSON, once made
    delivered_at: Mapped[str | None] = mapped_column(String(20))          # last put in a heartbeat answer
    finished_at: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(64))


class KioskCommandEvent(Base):
    """What happened to a command, one row each (central's side of its audit): sent, delivered, and every
    result a kiosk reported, also one that changes nothing (a replay refused, a kiosk it was not for)."""

    __tablename__ = "kiosk_command_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    command_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))                    # the kiosk it was for, or that reported
    at: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(64), default="")


class KioskCommandLogs(Base):
    """The log lines a kiosk sent for a collect-logs command (checked to hold no personal data, on both
    sides), kept with the command."""

    __tablename__ = "kiosk_command_logs"

    command_id: Mapped[str] = mapped_column(ForeignKey("kiosk_commands.command_id"), primary_key=True)
    received_at: Mapped[str] = mapped_column(String(20))
    lines: Mapped[str] = mapped_column(Text)                              # one a line, newest last
    dropped: Mapped[int] = mapped_column(default=0)                       # lines the kiosk's check left out


class Announcement(Base):
    """A text for the attract screens (`kiosk-central announce`), in Arabic and English: everywhere or in
    one governorate, until a time (None: until withdrawn)."""

    __tablename__ = "announcements"

    announcement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    text_ar: Mapped[str] = mapped_column(String(400))
    text_en: Mapped[str] = mapped_column(String(400))
    governorate: Mapped[str] = mapped_column(String(64), default="")      # "" everywhere
    created_at: Mapped[str] = mapped_column(String(20), index=True)
    until: Mapped[str | None] = mapped_column(String(20))
    withdrawn_at: Mapped[str | None] = mapped_column(String(20))


# --- Staged rollouts (ROLLOUT): central/rollouts.py --------------------------------------------------------


class Rollout(Base):
    """A release (version, platform) offered to cohorts of kiosks (`kiosk-central rollout start`). `state`:
    active (its cohorts are offered the version), paused (offered nothing; `reason`, and the kiosk whose
    failure paused it, if one did) or rolled_back (offered nothing, ever again; `superseded_by` names the
    rollout of the release that replaced it, when one did)."""

    __tablename__ = "rollouts"

    rollout_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    platform: Mapped[str] = mapped_column(String(32))
    seed: Mapped[str] = mapped_column(String(32))                  # salts the percentage cohorts' hash
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(200))        # why paused or rolled back
    paused_by_device: Mapped[str | None] = mapped_column(String(64))
    supersedes: Mapped[str | None] = mapped_column(String(32))     # the rollout this one rolled back
    superseded_by: Mapped[str | None] = mapped_column(String(32))


class RolloutCohort(Base):
    """One cohort of a rollout, in the order added: a percentage of the fleet (by a hash of each kiosk's
    id), a governorate, or a list of device ids (`value`: "10", "damascus", "id1 id2 ...")."""

    __tablename__ = "rollout_cohorts"

    rollout_id: Mapped[str] = mapped_column(ForeignKey("rollouts.rollout_id"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))                  # percent | governorate | devices
    value: Mapped[str] = mapped_column(Text)
    added_at: Mapped[str] = mapped_column(String(20))
    added_by: Mapped[str | None] = mapped_column(String(64))


class RolloutDevice(Base):
    """A kiosk a rollout offered its version to, counted in the first of its cohorts that holds it, and
    what the kiosk reported since (each time kept once)."""

    __tablename__ = "rollout_devices"

    rollout_id: Mapped[str] = mapped_column(ForeignKey("rollouts.rollout_id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int]
    offered_at: Mapped[str] = mapped_column(String(20))
    from_version: Mapped[str] = mapped_column(String(32))          # the version it ran when first offered
    installed_at: Mapped[str | None] = mapped_column(String(24))
    proven_at: Mapped[str | None] = mapped_column(String(24))
    failed_at: Mapped[str | None] = mapped_column(String(24))
    failure: Mapped[str | None] = mapped_column(String(64))        # a reason code


class RolloutReport(Base):
    """An outcome a kiosk reported (one of its update events, by the event's id): a report sent again
    finds its row and changes nothing."""

    __tablename__ = "rollout_reports"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rollout_id: Mapped[str] = mapped_column(String(32), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    at: Mapped[str] = mapped_column(String(24))                    # the kiosk's clock
    reason: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[str] = mapped_column(String(20))


class RolloutEvent(Base):
    """What happened to a rollout, one row each: started, widened, paused (by staff, or by a kiosk's
    failure), resumed, rolled back."""

    __tablename__ = "rollout_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(32))
    by: Mapped[str | None] = mapped_column(String(80))             # a member of staff, or "kiosk <id>"
    detail: Mapped[str] = mapped_column(String(200), default="")
