"""What each staff role may do. A viewer looks; an operator also acts on kiosks (revokes one, sends them a
command, publishes an announcement); a publisher also publishes releases and rolls them out. Every form's route names the
permission it needs (central/dashboard/guard.py), and a role without it is answered 403."""

from __future__ import annotations

import enum


class Role(enum.Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    PUBLISHER = "publisher"


class Permission(enum.Enum):
    VIEW = "view"            # every page
    OPERATE = "operate"      # act on kiosks: revoke one, command them, read their logs, announce on their screens
    PUBLISH = "publish"      # publish a release, roll it out, pause or resume a rollout, push a catalogue


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.VIEW}),
    Role.OPERATOR: frozenset({Permission.VIEW, Permission.OPERATE}),
    Role.PUBLISHER: frozenset({Permission.VIEW, Permission.OPERATE, Permission.PUBLISH}),
}


def may(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
