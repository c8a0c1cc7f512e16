"""Building what a kiosk installs: `make release` (release/build.py)."""
