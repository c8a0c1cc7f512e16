"""Who the card says the citizen is: name, and photo once it has been read; and documents claimed
earlier that wait for them (central said so), with a button to print them now, without paying."""

from io import BytesIO
from pathlib import Path

from kivy.core.image import Image as CoreImage
from kivy.lang import Builder
from kivy.properties import NumericProperty, ObjectProperty, StringProperty

from kiosk import i18n
from kiosk.events import Cancel, CollectDocuments, ShowServices
from kiosk.session import View
from screens.base import KioskScreen


class IdentityScreen(KioskScreen):
    greeting = StringProperty("")
    photo = ObjectProperty(None, allownone=True)
    waiting = NumericProperty(0)

    def show(self, view: View) -> None:
        super().show(view)
        self.waiting = view.waiting_documents
        self.greeting = i18n.text("identity.greeting", view.language, name=view.holder_name or "")
        if view.photo is None:
            self.photo = None
        elif self._photo_bytes is not view.photo:
            try:
                self.photo = CoreImage(BytesIO(view.photo), ext="jpg").texture
            except Exception:   # a photo that does not decode is not shown, nothing more
                self.photo = None
        self._photo_bytes = view.photo

    _photo_bytes = None

    def go_on(self) -> None:
        self.send(ShowServices())

    def collect(self) -> None:
        self.send(CollectDocuments())

    def cancel(self) -> None:
        self.send(Cancel())


Builder.load_file(str(Path(__file__).with_name("identity.kv")))
