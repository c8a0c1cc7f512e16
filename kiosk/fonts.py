"""The fonts the kiosk draws with, from Debian's font packages.

Each covers both Arabic (with the presentation forms that shaping produces)
and Latin, so a mixed line never shows empty boxes: DejaVu Sans on screen
(fonts-dejavu-core), Amiri on printed documents (fonts-hosny-amiri).
"""

from __future__ import annotations

from pathlib import Path

from kiosk.errors import ConfigError

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_AMIRI = Path("/usr/share/fonts/opentype/fonts-hosny-amiri")

SCREEN_REGULAR = _DEJAVU / "DejaVuSans.ttf"
SCREEN_BOLD = _DEJAVU / "DejaVuSans-Bold.ttf"
PRINT_REGULAR = _AMIRI / "Amiri-Regular.ttf"
PRINT_BOLD = _AMIRI / "Amiri-Bold.ttf"

ALL = (SCREEN_REGULAR, SCREEN_BOLD, PRINT_REGULAR, PRINT_BOLD)


def check() -> None:
    """Stop start-up with one clear line when a font package is missing."""
    for font in ALL:
        if not font.is_file():
            raise ConfigError("font %s is missing: install fonts-dejavu-core and fonts-hosny-amiri" % font)
