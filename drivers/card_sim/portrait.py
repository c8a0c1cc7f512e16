"""An obviously synthetic portrait (JPEG) for simulated cards."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 240, 300

_BACKGROUNDS = [(120, 170, 215), (150, 200, 160), (225, 190, 130), (200, 160, 210), (230, 150, 140)]
_SKIN = [(241, 208, 180), (224, 180, 140), (198, 150, 110), (160, 110, 80)]
_HAIR = [(40, 30, 25), (90, 60, 35), (20, 20, 20), (130, 100, 60)]


def portrait_jpeg(seed: str, sex: str | None = None, *, quality: int = 90) -> bytes:
    """A silhouette on a coloured background, chosen by `seed`; a few KB."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    background = _BACKGROUNDS[digest[0] % len(_BACKGROUNDS)]
    skin = _SKIN[digest[1] % len(_SKIN)]
    hair = _HAIR[digest[2] % len(_HAIR)]
    clothes = (digest[3] // 2 + 40, digest[4] // 2 + 40, digest[5] // 2 + 40)

    image = Image.new("RGB", (WIDTH, HEIGHT), background)
    draw = ImageDraw.Draw(image)
    cx = WIDTH // 2
    draw.ellipse((cx - 100, 215, cx + 100, 395), fill=clothes)            # shoulders
    draw.rectangle((cx - 22, 170, cx + 22, 225), fill=skin)               # neck
    if sex == "F":
        draw.ellipse((cx - 72, 45, cx + 72, 230), fill=hair)              # long hair
    draw.ellipse((cx - 58, 55, cx + 58, 200), fill=skin)                  # face
    draw.chord((cx - 62, 45, cx + 62, 150), 180, 360, fill=hair)          # hair top
    for ex in (cx - 25, cx + 25):                                         # eyes
        draw.ellipse((ex - 7, 115, ex + 7, 125), fill=(255, 255, 255))
        draw.ellipse((ex - 3, 116, ex + 3, 124), fill=(40, 40, 40))
    draw.line((cx, 125, cx - 5, 150, cx + 3, 152), fill=(150, 100, 80), width=2)  # nose
    draw.arc((cx - 22, 150, cx + 22, 178), 20, 160, fill=(150, 60, 60), width=3)  # mouth
    draw.text((6, HEIGHT - 16), "SPECIMEN", fill=(255, 255, 255))

    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()
