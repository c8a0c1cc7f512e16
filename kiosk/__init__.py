"""Citizen service kiosk: the core that knows no hardware and no screen."""
