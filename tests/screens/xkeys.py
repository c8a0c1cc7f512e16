"""A keyboard plugged into the kiosk, and a window manager's close request, on an X display.

Through libX11 and libXtst with ctypes (both come with x11-utils, which `make
install` puts there): the XTest extension makes the X server believe keys were
pressed on a real keyboard, so SDL and Kivy see them as they would a USB
keyboard's; `ask_to_close` sends the WM_DELETE_WINDOW message a window
manager sends on Alt+F4. Only for the tests.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_char_p, c_int, c_long, c_uint, c_ulong, c_void_p

_X11 = ctypes.CDLL("libX11.so.6")
_XTST = ctypes.CDLL("libXtst.so.6")
_X11.XOpenDisplay.restype = c_void_p
_X11.XOpenDisplay.argtypes = [c_char_p]
_X11.XCloseDisplay.argtypes = [c_void_p]
_X11.XDefaultRootWindow.restype = c_ulong
_X11.XDefaultRootWindow.argtypes = [c_void_p]
_X11.XStringToKeysym.restype = c_ulong
_X11.XStringToKeysym.argtypes = [c_char_p]
_X11.XKeysymToKeycode.restype = ctypes.c_ubyte
_X11.XKeysymToKeycode.argtypes = [c_void_p, c_ulong]
_X11.XInternAtom.restype = c_ulong
_X11.XInternAtom.argtypes = [c_void_p, c_char_p, c_int]
_X11.XQueryTree.argtypes = [c_void_p, c_ulong, POINTER(c_ulong), POINTER(c_ulong), POINTER(POINTER(c_ulong)),
                            POINTER(c_uint)]

class _TextProperty(ctypes.Structure):
    _fields_ = [("value", c_char_p), ("encoding", c_ulong), ("format", c_int), ("nitems", c_ulong)]


_X11.XGetWMName.argtypes = [c_void_p, c_ulong, POINTER(_TextProperty)]
_X11.XFree.argtypes = [c_void_p]
_X11.XSync.argtypes = [c_void_p, c_int]
_X11.XSetInputFocus.argtypes = [c_void_p, c_ulong, c_int, c_ulong]
_X11.XGetInputFocus.argtypes = [c_void_p, POINTER(c_ulong), POINTER(c_int)]
_X11.XSendEvent.argtypes = [c_void_p, c_ulong, c_int, c_long, c_void_p]
_XTST.XTestFakeKeyEvent.argtypes = [c_void_p, c_uint, c_int, c_ulong]

_CLIENT_MESSAGE = 33
_REVERT_TO_PARENT = 2


class _ClientMessage(ctypes.Structure):
    _fields_ = [("type", c_int), ("serial", c_ulong), ("send_event", c_int), ("display", c_void_p),
                ("window", c_ulong), ("message_type", c_ulong), ("format", c_int), ("data", c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", c_long * 24)]


class Keyboard:
    """The X display `name`, as a keyboard and a window manager see it."""

    def __init__(self, name: str) -> None:
        self._display = _X11.XOpenDisplay(name.encode())
        if not self._display:
            raise RuntimeError("cannot open X display %s" % name)

    def close(self) -> None:
        _X11.XCloseDisplay(self._display)

    def window_titled(self, title: str) -> int | None:
        """The top-level window with that title (a window manager's view of the app)."""
        root, parent, count = c_ulong(), c_ulong(), c_uint()
        children = POINTER(c_ulong)()
        _X11.XQueryTree(self._display, _X11.XDefaultRootWindow(self._display), byref(root), byref(parent),
                        byref(children), byref(count))
        try:
            for i in range(count.value):
                name = _TextProperty()          # WM_NAME, in whatever encoding SDL set it (UTF-8)
                if _X11.XGetWMName(self._display, children[i], byref(name)) and name.value is not None:
                    if name.value.decode("utf-8", "replace") == title:
                        return children[i]
        finally:
            if children:
                _X11.XFree(children)
        return None

    def focus(self, window: int) -> bool:
        """Give `window` the keyboard, as clicking into it would; True when it has it."""
        _X11.XSetInputFocus(self._display, window, _REVERT_TO_PARENT, 0)
        _X11.XSync(self._display, 0)
        focused, revert = c_ulong(), c_int()
        _X11.XGetInputFocus(self._display, byref(focused), byref(revert))
        return focused.value == window

    def press(self, chord: str) -> None:
        """`chord` like "Escape", "alt+F4", "ctrl+alt+BackSpace": modifiers down, the key, all up."""
        names = [{"ctrl": "Control_L", "alt": "Alt_L", "shift": "Shift_L", "super": "Super_L"}.get(part, part)
                 for part in chord.split("+")]
        codes = []
        for name in names:
            code = _X11.XKeysymToKeycode(self._display, _X11.XStringToKeysym(name.encode()))
            if not code:
                raise ValueError("no key %r on this keyboard" % name)
            codes.append(code)
        for code in codes:
            _XTST.XTestFakeKeyEvent(self._display, code, 1, 0)
        for code in reversed(codes):
            _XTST.XTestFakeKeyEvent(self._display, code, 0, 0)
        _X11.XSync(self._display, 0)

    def ask_to_close(self, window: int) -> None:
        """What a window manager does on Alt+F4: WM_DELETE_WINDOW to the window."""
        event = _XEvent()
        event.xclient.type = _CLIENT_MESSAGE
        event.xclient.window = window
        event.xclient.message_type = _X11.XInternAtom(self._display, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = _X11.XInternAtom(self._display, b"WM_DELETE_WINDOW", 0)
        _X11.XSendEvent(self._display, window, 0, 0, byref(event))
        _X11.XSync(self._display, 0)
