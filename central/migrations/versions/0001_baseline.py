"""Baseline: central's tables as they were when central moved to Alembic.

The tables are written out here, frozen, rather than taken from central/models.py, which moves on.
A database made before migrations (by ``create_all``, no ``alembic_version``) gets the ones of these it
lacks, is stamped at this revision and upgraded from here (central/migrate.py).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASELINE = sa.MetaData()

_CITIZEN = "citizens.national_number"

sa.Table(
    "citizens", BASELINE,
    sa.Column("national_number", sa.String(11), primary_key=True),
    sa.Column("card_number", sa.String(12), nullable=False, unique=True),
    sa.Column("given_name_ar", sa.String(200), nullable=False),
    sa.Column("family_name_ar", sa.String(200), nullable=False),
    sa.Column("given_name_latin", sa.String(200)),
    sa.Column("family_name_latin", sa.String(200)),
    sa.Column("father_name_ar", sa.String(200), nullable=False),
    sa.Column("mother_name_ar", sa.String(200), nullable=False),
    sa.Column("date_of_birth", sa.Date(), nullable=False),
    sa.Column("place_of_birth_ar", sa.String(200), nullable=False),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("civil_registry_ar", sa.String(200), nullable=False),
    sa.Column("card_issued", sa.Date(), nullable=False),
    sa.Column("card_expires", sa.Date(), nullable=False),
    sa.Column("marital_status", sa.String(10), nullable=False),
    sa.Column("spouse_number", sa.String(11), sa.ForeignKey(_CITIZEN)),
    sa.Column("marriage_date", sa.Date()),
    sa.Column("address_ar", sa.String(400), nullable=False),
    sa.Column("date_of_death", sa.Date()),
    sa.Column("place_of_death_ar", sa.String(200)),
    sa.Column("divorce_date", sa.Date()),
    sa.Column("former_name_ar", sa.String(200)),
    sa.Column("name_changed_on", sa.Date()),
    sa.Column("displaced_from_ar", sa.String(200)),
    sa.Column("driving_licence_number", sa.String(20)),
    sa.Column("driving_licence_grade", sa.String(12)),
    sa.Column("driving_licence_expires", sa.Date()),
)

sa.Table(
    "kinship", BASELINE,
    sa.Column("parent_number", sa.String(11), sa.ForeignKey(_CITIZEN, ondelete="CASCADE"), primary_key=True),
    sa.Column("child_number", sa.String(11), sa.ForeignKey(_CITIZEN, ondelete="CASCADE"), primary_key=True),
)

sa.Table(
    "criminal_records", BASELINE,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("national_number", sa.String(11), sa.ForeignKey(_CITIZEN, ondelete="CASCADE"), nullable=False),
    sa.Column("date", sa.Date(), nullable=False),
    sa.Column("court_ar", sa.String(200), nullable=False),
    sa.Column("offence_ar", sa.String(400), nullable=False),
)

sa.Table(
    "qualifications", BASELINE,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("national_number", sa.String(11), sa.ForeignKey(_CITIZEN, ondelete="CASCADE"), nullable=False),
    sa.Column("year", sa.Integer(), nullable=False),
    sa.Column("certificate_ar", sa.String(200), nullable=False),
    sa.Column("institution_ar", sa.String(200), nullable=False),
)

sa.Table(
    "properties", BASELINE,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("national_number", sa.String(11), sa.ForeignKey(_CITIZEN, ondelete="CASCADE"), nullable=False),
    sa.Column("area_ar", sa.String(200), nullable=False),
    sa.Column("parcel", sa.String(20), nullable=False),
    sa.Column("description_ar", sa.String(200), nullable=False),
    sa.Column("shares", sa.String(20), nullable=False),
)

sa.Table(
    "vehicles", BASELINE,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("national_number", sa.String(11), sa.ForeignKey(_CITIZEN, ondelete="CASCADE"), nullable=False),
    sa.Column("plate_ar", sa.String(40), nullable=False),
    sa.Column("make_ar", sa.String(200), nullable=False),
    sa.Column("year", sa.Integer(), nullable=False),
)

sa.Table(
    "catalogue_categories", BASELINE,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("name_ar", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
)

sa.Table(
    "catalogue_services", BASELINE,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("name_ar", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
    sa.Column("fee_minor", sa.Integer(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("governorates", sa.String(400), nullable=False),
    sa.Column("rank", sa.Integer()),
)

sa.Table(
    "catalogue_offline_policies", BASELINE,
    sa.Column("code", sa.String(64), sa.ForeignKey("catalogue_services.code"), primary_key=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("max_fee_minor", sa.Integer(), nullable=False),
    sa.Column("daily_cap_minor", sa.Integer(), nullable=False),
)

sa.Table(
    "certificate_requests", BASELINE,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("body_digest", sa.String(64)),
    sa.Column("device_id", sa.String(64)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("http_status", sa.Integer(), nullable=False),
    sa.Column("answer", sa.Text(), nullable=False),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("voided_at", sa.String(20)),
)

sa.Table(
    "issued_documents", BASELINE,
    sa.Column("serial", sa.String(32), primary_key=True),
    sa.Column("request_id", sa.String(64), sa.ForeignKey("certificate_requests.request_id"), nullable=False,
              unique=True),
    sa.Column("service_code", sa.String(64), nullable=False),
    sa.Column("national_number", sa.String(11), sa.ForeignKey(_CITIZEN), nullable=False),
    sa.Column("payment_id", sa.String(64), nullable=False, unique=True),
    sa.Column("issued_at", sa.String(20), nullable=False),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("voided_at", sa.String(20)),
)

sa.Table(
    "claims", BASELINE,
    sa.Column("serial", sa.String(32), sa.ForeignKey("issued_documents.serial"), primary_key=True),
    sa.Column("national_number", sa.String(11), sa.ForeignKey(_CITIZEN), nullable=False, index=True),
    sa.Column("reference", sa.String(64)),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("collected_at", sa.String(20)),
    sa.Column("collected_by", sa.String(64)),
)

sa.Table(
    "devices", BASELINE,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("enrolled_at", sa.String(20), nullable=False),
    sa.Column("revoked_at", sa.String(20)),
    sa.Column("last_seen_at", sa.String(20)),
)

sa.Table(
    "enrolment_codes", BASELINE,
    sa.Column("code_digest", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("expires_at", sa.String(20), nullable=False),
    sa.Column("used_at", sa.String(20)),
)

sa.Table(
    "seen_signatures", BASELINE,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("created", sa.Integer(), nullable=False, index=True),
)

sa.Table(
    "card_challenges", BASELINE,
    sa.Column("challenge_id", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("expires_at", sa.String(20), nullable=False),
    sa.Column("used_at", sa.String(20)),
    sa.Column("national_number", sa.String(11)),
    sa.Column("card_number", sa.String(16)),
    sa.Column("request_id", sa.String(64)),
)


def upgrade() -> None:
    BASELINE.create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    BASELINE.drop_all(op.get_bind(), checkfirst=False)
