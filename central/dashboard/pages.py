"""The dashboard's HTML: Jinja2 templates (templates/), every value escaped (autoescape), the words from
texts.py, Arabic right to left by default. Like the verification page (central/verify_page.py), a page
runs no script and loads nothing; its Content-Security-Policy says so, and lets forms go only to central."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from central import verify_page
from central.dashboard import texts
from central.dashboard.audit import CONSOLE
from central.dashboard.command_form import CHOICES as COMMAND_FORM

TEMPLATES = Path(__file__).with_name("templates")

HEADERS = {
    **verify_page.HEADERS,
    # form-action does not fall back on default-src: said here, forms post to central only.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}

_environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                           undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_environment.globals["CONSOLE"] = CONSOLE
_environment.globals["COMMAND_FORM"] = COMMAND_FORM        # the command form's choices, also on a kiosk's page


def when(iso: str | None) -> str:
    """``2026-01-31T09:15:00Z`` as ``2026-01-31 09:15 UTC``; "—" for none."""
    if not iso:
        return "—"
    return "%s %s UTC" % (iso[:10], iso[11:16]) if len(iso) >= 16 else iso


def render(template: str, language: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """`template` in `language` ("ar" or "en"), answered with the page headers."""
    if language not in texts.LANGUAGES:
        language = texts.LANGUAGES[0]

    def t(key: str, **values: Any) -> str:
        words = texts.text(key, language)
        return words.format(**values) if values else words

    def t_isolated(key: str, **values: Any) -> Markup:
        """The text with each value isolated in its own direction (a date or a name in Latin letters inside
        an Arabic sentence keeps its order), every part escaped."""
        isolated = {name: Markup("<bdi>%s</bdi>") % value for name, value in values.items()}
        return Markup(str(escape(texts.text(key, language))).format(**isolated))

    def t_or(key: str, fallback: str) -> str:
        return texts.text(key, language) if texts.has(key) else fallback

    context.setdefault("staff", None)           # None: nobody signed in yet (no menu, no sign-out)
    context.setdefault("page", None)            # the menu's entry to mark as the current one
    context.setdefault("here", "")              # the page the language switch shows again ("": this one)
    page = _environment.get_template(template).render(
        t=t, t_isolated=t_isolated, t_or=t_or, when=when, lang=language, dir="rtl" if language == "ar" else "ltr",
        other_lang="en" if language == "ar" else "ar", **context)
    return HTMLResponse(page, status_code=status_code, headers=HEADERS)
