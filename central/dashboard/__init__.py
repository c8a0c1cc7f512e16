"""The dashboard of central's staff, at /dashboard: the kiosks by state and governorate, the ones that
need someone (not heard from, paper low, door open, a failed update), one kiosk's heartbeats, alerts
and audit log, and the staff audit trail; in Arabic (right to left, the default) and English.

Staff sign in with a password and a TOTP code (accounts.py, passwords.py, totp.py) into a server-side
session (sessions.py); each role may do what roles.py grants; every form carries a CSRF token and is
written in the staff audit trail (audit.py). The pages are server-rendered HTML (pages.py, templates/)
with the words of texts.py, and run no script. web.py holds the routes and their guards; ``install``
puts them on central's app. Other features add their pages and forms the same way: the rollouts
(rollout_pages.py), the commands to kiosks (command_pages.py, command_form.py), the announcements
(announcement_pages.py).
"""

from central.dashboard.web import Dashboard, install

__all__ = ["Dashboard", "install"]
