"""Spoken guidance: each screen's prompt, played through Kivy's audio.

`PromptPlayer` plays `<prompts>/<language>/<screen>.wav` (made at build time
by `screens.prompts`, or a recording put in its place), one at a time: a new
prompt stops the one playing. A file that is missing or that Kivy cannot load
is silence and one log line, never an error: the screen still says it all.

`Guide` decides when to speak: on request (the header's "listen" button), and
with guidance on, each time a screen comes or the language changes. Typing
on a screen changes nothing that is spoken, so a typed PIN digit never plays
anything. Everything runs on Kivy's thread. Log lines name the screen and
the language, nothing of the citizen.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from screens.prompts import prompt_path

log = logging.getLogger(__name__)


def _kivy_loader(path: str):
    from kivy.core.audio import SoundLoader   # the audio provider starts when first needed
    return SoundLoader.load(path)


class PromptPlayer:
    def __init__(self, prompts: Path, *, load: Callable[[str], object] | None = None) -> None:
        """`prompts` holds `{ar,en}/<screen>.wav`; `load` is Kivy's `SoundLoader.load` unless told."""
        self.prompts = Path(prompts)
        self._load = load or _kivy_loader
        self._sound = None
        self.playing: tuple[str, str] | None = None     # (screen, language) of the prompt last started

    def play(self, screen: str, language: str) -> bool:
        """Stop what is playing and play `screen`'s prompt in `language`; False when it is silence."""
        self.stop()
        path = prompt_path(self.prompts, screen, language)
        if not path.is_file():
            log.info("audio.silent screen=%s language=%s reason=missing", screen, language)
            return False
        sound = self._load(str(path))
        if sound is None or not sound.length:       # Kivy's SDL2 sound answers a length of 0 when it failed
            log.warning("audio.silent screen=%s language=%s reason=unloadable", screen, language)
            if sound is not None:
                sound.unload()
            return False
        sound.play()
        self._sound, self.playing = sound, (screen, language)
        log.info("audio.played screen=%s language=%s", screen, language)
        return True

    def stop(self) -> None:
        """Silence, and the last prompt's memory given back (only one prompt is held at a time)."""
        if self._sound is not None:
            self._sound.stop()
            self._sound.unload()
            self._sound, self.playing = None, None


class Guide:
    def __init__(self, player: PromptPlayer) -> None:
        """Guidance on or off is the session's (`View.audio_guidance`: the citizen's switch,
        starting as the configuration's `audio.guidance` says)."""
        self.player = player
        self._spoken: tuple[str, str] | None = None   # the screen and language last guided, while guidance is on

    def shown(self, screen: str, language: str, guidance: bool) -> None:
        """A view was shown; `guidance` is the citizen's switch. Speaks when guidance is on
        and the screen or the language is new, or guidance has just been switched on."""
        now = (screen, language) if guidance else None
        if now == self._spoken:
            return
        self._spoken = now
        if now is None:
            self.player.stop()
        else:
            self.player.play(screen, language)

    def listen(self, screen: str, language: str) -> None:
        """The citizen asked to hear this screen's prompt (again)."""
        self.player.play(screen, language)
