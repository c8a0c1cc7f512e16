"""The fleet: telemetry, commands to kiosks, staff accounts.

Each feature that adds tables or columns to central/models.py appends its operations here:
``op.create_table(...)`` / ``op.add_column(...)`` at the end of upgrade(), and their reverse
(``op.drop_table(...)`` / ``op.drop_column(...)``) at the start of downgrade(), so that
downgrade() undoes upgrade() in the opposite order. tests/central/test_migrations.py checks that
the migrated schema equals the models.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _heartbeat_facts() -> list[sa.Column]:
    """TELEMETRY: the columns kiosk_heartbeats and kiosk_status share (central/models.py's _HeartbeatFacts)."""
    return [
        sa.Column("received_at", sa.String(20), nullable=False, index=True),
        sa.Column("sent_at", sa.String(24), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.String(64)),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("paper", sa.String(8), nullable=False),
        sa.Column("door", sa.String(8), nullable=False),
        sa.Column("queue_depth", sa.Integer(), nullable=False),
        sa.Column("dead_letters", sa.Integer(), nullable=False),
        sa.Column("last_sync_at", sa.String(24)),
        sa.Column("disk_free_mb", sa.Integer()),
        sa.Column("facts", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    # TELEMETRY: heartbeats (history and each kiosk's latest), alerts, audit entries, self-test reports;
    # a kiosk's governorate.
    op.add_column("devices", sa.Column("governorate", sa.String(64)))
    op.add_column("enrolment_codes", sa.Column("governorate", sa.String(64)))
    op.create_table(
        "kiosk_heartbeats",
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        *_heartbeat_facts(),
        sa.Column("id", sa.Integer(), primary_key=True),
    )
    op.create_table(
        "kiosk_status",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.device_id"), primary_key=True),
        *_heartbeat_facts(),
    )
    op.create_table(
        "kiosk_alerts",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("raised_at", sa.String(24), primary_key=True),
        sa.Column("received_at", sa.String(20), nullable=False, index=True),
    )
    op.create_table(
        "kiosk_audit_entries",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(24), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("technician", sa.String(32)),
        sa.Column("detail", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("received_at", sa.String(20), nullable=False),
    )
    op.create_table(
        "kiosk_selftests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        sa.Column("checked_at", sa.String(20), nullable=False),
        sa.Column("received_at", sa.String(20), nullable=False, index=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("failed", sa.String(200), nullable=False),
        sa.Column("checks", sa.Text(), nullable=False),
    )
    # DASHBOARD: staff accounts, their sessions, the staff audit trail.
    op.create_table(
        "staff_accounts",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=False),
        sa.Column("totp_last_step", sa.Integer()),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.String(20)),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("disabled_at", sa.String(20)),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_digest", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), sa.ForeignKey("staff_accounts.username", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("second_factor_at", sa.String(20)),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("last_seen_at", sa.String(20), nullable=False),
    )
    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.String(20), nullable=False, index=True),
        sa.Column("username", sa.String(64), index=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(200), nullable=False),
    )
    # COMMANDS: commands to kiosks (their envelopes, what happened to them, collected logs); announcements.
    op.create_table(
        "kiosk_commands",
        sa.Column("command_id", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False, index=True),
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.String(20), nullable=False),
        sa.Column("expires_at", sa.String(20), nullable=False),
        sa.Column("issued_by", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("envelope", sa.Text()),
        sa.Column("delivered_at", sa.String(20)),
        sa.Column("finished_at", sa.String(20)),
        sa.Column("reason", sa.String(64)),
    )
    op.create_table(
        "kiosk_command_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("command_id", sa.String(64), nullable=False, index=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("at", sa.String(20), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
    )
    op.create_table(
        "kiosk_command_logs",
        sa.Column("command_id", sa.String(64), sa.ForeignKey("kiosk_commands.command_id"), primary_key=True),
        sa.Column("received_at", sa.String(20), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
    )
    op.create_table(
        "announcements",
        sa.Column("announcement_id", sa.String(64), primary_key=True),
        sa.Column("text_ar", sa.String(400), nullable=False),
        sa.Column("text_en", sa.String(400), nullable=False),
        sa.Column("governorate", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False, index=True),
        sa.Column("until", sa.String(20)),
        sa.Column("withdrawn_at", sa.String(20)),
    )
    # ROLLOUT: staged rollouts of releases, their cohorts, the kiosks offered, their reports, their history.
    op.create_table(
        "rollouts",
        sa.Column("rollout_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("seed", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(64)),
        sa.Column("changed_at", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("paused_by_device", sa.String(64)),
        sa.Column("supersedes", sa.String(32)),
        sa.Column("superseded_by", sa.String(32)),
    )
    op.create_table(
        "rollout_cohorts",
        sa.Column("rollout_id", sa.String(32), sa.ForeignKey("rollouts.rollout_id"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("added_at", sa.String(20), nullable=False),
        sa.Column("added_by", sa.String(64)),
    )
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", sa.String(32), sa.ForeignKey("rollouts.rollout_id"), primary_key=True),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("offered_at", sa.String(20), nullable=False),
        sa.Column("from_version", sa.String(32), nullable=False),
        sa.Column("installed_at", sa.String(24)),
        sa.Column("proven_at", sa.String(24)),
        sa.Column("failed_at", sa.String(24)),
        sa.Column("failure", sa.String(64)),
    )
    op.create_table(
        "rollout_reports",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("rollout_id", sa.String(32), nullable=False, index=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("at", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("received_at", sa.String(20), nullable=False),
    )
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rollout_id", sa.String(32), nullable=False, index=True),
        sa.Column("at", sa.String(20), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("by", sa.String(80)),
        sa.Column("detail", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    # ROLLOUT's, undone.
    for table in ("rollout_events", "rollout_reports", "rollout_devices", "rollout_cohorts", "rollouts"):
        op.drop_table(table)
    # COMMANDS' undone.
    for table in ("announcements", "kiosk_command_logs", "kiosk_command_events", "kiosk_commands"):
        op.drop_table(table)
    # DASHBOARD's, undone.
    for table in ("staff_audit", "staff_sessions", "staff_accounts"):
        op.drop_table(table)
    # TELEMETRY's, undone.
    for table in ("kiosk_selftests", "kiosk_audit_entries", "kiosk_alerts", "kiosk_status", "kiosk_heartbeats"):
        op.drop_table(table)
    op.drop_column("enrolment_codes", "governorate")
    op.drop_column("devices", "governorate")
