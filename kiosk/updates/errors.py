"""What can stop an update: each leaves the running version and the metadata trusted so far as they were."""

from kiosk.errors import KioskError


class UpdateError(KioskError):
    """No update now; the kiosk goes on with the version it runs."""


class UpdateRefused(UpdateError):
    """The repository or a bundle failed verification (a forgery, a rollback, a frozen or mixed repository, too
    many bytes): nothing of it is kept or trusted."""


class UpdateUnreachable(UpdateError):
    """The repository could not be reached or stopped answering (a cut download keeps what it has): try later."""


class NotEnoughSpace(UpdateError):
    """The disk has no room for the bundle and the margin kept free: nothing was downloaded."""


class UpdateBusy(UpdateError):
    """Another check or download is running on this kiosk (one at a time)."""


class NoTrustedRoot(UpdateError):
    """The firmware ships no trusted root and `updates.trusted_root` names none: updates cannot be verified."""
