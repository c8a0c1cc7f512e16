"""The floor for the kiosk's cold start: a bare Kivy app with one Label.

    python bench/bare_kivy_app.py [WIDTH HEIGHT]

It sets Kivy up as the kiosk does (the same environment variables and
window settings as `screens/launch.py`), and prints two lines that the
benchmark reads as they come:

    BARE first_frame      once the first frame has been put on the display
    BARE shown            once the label has been on the display for three more
                          frames, polled 30 times a second: the rule the
                          journey runner uses before it announces a screen

then it stops. It imports nothing of the kiosk, so that the figure is Kivy's own.
"""

import os
import sys

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")

from kivy.config import Config  # noqa: E402  (Kivy reads its settings when first imported)

WIDTH, HEIGHT = (sys.argv[1], sys.argv[2]) if len(sys.argv) == 3 else ("1024", "600")
Config.set("graphics", "width", WIDTH)
Config.set("graphics", "height", HEIGHT)
Config.set("graphics", "fullscreen", "0")
Config.set("graphics", "resizable", "0")

from kivy.app import App  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.uix.label import Label  # noqa: E402

# As screens/journey.py: FRAMES_BEFORE_SCREENSHOT frames, polled at 30 Hz.
FRAMES_AFTER_SHOWN = 3
POLL_S = 1 / 30


class BareApp(App):
    def build(self):
        return Label(text="Bare Kivy app")

    def on_start(self):
        self._shown_at_frame = None
        Window.bind(on_flip=self._on_first_flip)
        self._poll_event = Clock.schedule_interval(self._poll, POLL_S)

    def _on_first_flip(self, *_args):
        Window.unbind(on_flip=self._on_first_flip)
        print("BARE first_frame", flush=True)

    def _poll(self, _dt):
        if self._shown_at_frame is None:
            self._shown_at_frame = Clock.frames_displayed
        elif Clock.frames_displayed - self._shown_at_frame >= FRAMES_AFTER_SHOWN:
            self._poll_event.cancel()
            print("BARE shown", flush=True)
            self.stop()


if __name__ == "__main__":
    BareApp().run()
