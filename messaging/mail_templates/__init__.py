"""Mail templates: for each kind of message a plain-text and an HTML part per language.

Files: ``<kind>.<language>.txt`` (first line ``Subject: …``, a blank line, then the text) and
``<kind>.<language>.html`` (the HTML body, wrapped in ``_layout.html``). They are
``string.Template`` texts: ``$url``, ``${name}``; a literal dollar is ``$$``. Every kind gets
``name`` (the display name) and ``username``; callers give the rest (see ``KINDS``).

The language is the user's ``locale``'s (``es-MX`` → ``es``) when we have that kind in it, else
English. Parameters are HTML-escaped in the HTML part, never in the text part; a missing one is a
programming error (``KeyError``), not a mail with a hole in it.
"""

from __future__ import annotations

import html
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_LANGUAGE = "en"
# kind -> the parameters its caller must give (besides name and username)
KINDS = {
    "verify_email": ("url", "email", "hours"),
    "email_changed": ("old_email", "new_email"),
    "reset_password": ("url", "minutes"),
    "export_ready": ("url", "expires_at"),
}


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str
    language: str


@cache
def _load(kind: str, language: str) -> tuple[string.Template, string.Template, string.Template]:
    """Subject, text and HTML templates of ``kind`` in ``language`` (FileNotFoundError: none)."""
    raw = (HERE / f"{kind}.{language}.txt").read_text(encoding="utf-8")
    first, _, text = raw.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"{kind}.{language}.txt must start with 'Subject: '")
    body = (HERE / f"{kind}.{language}.html").read_text(encoding="utf-8")
    return (
        string.Template(first.removeprefix("Subject: ").strip()),
        string.Template(text.lstrip("\n")),
        string.Template(body),
    )


@cache
def _layout() -> string.Template:
    return string.Template((HERE / "_layout.html").read_text(encoding="utf-8"))


def language_for(kind: str, locale: str | None) -> str:
    """The template language for a user's BCP 47 ``locale``: its language when ``kind`` exists
    in it, else English."""
    language = (locale or "").split("-", 1)[0].lower()
    if language and language.isalpha() and (HERE / f"{kind}.{language}.txt").exists():
        return language
    return DEFAULT_LANGUAGE


def _text_value(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**11:
        # epoch milliseconds (how every timestamp is stored): a date people read
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def render(kind: str, locale: str | None, params: dict[str, Any]) -> RenderedMail:
    """The subject, text and HTML of ``kind`` for a reader of ``locale`` with ``params``."""
    if kind not in KINDS:
        raise KeyError(f"no mail template named {kind!r}")
    missing = [name for name in (*KINDS[kind], "name", "username") if name not in params]
    if missing:
        raise KeyError(f"mail template {kind!r} needs {', '.join(missing)}")
    language = language_for(kind, locale)
    subject, text, body = _load(kind, language)
    plain = {key: _text_value(value) for key, value in params.items()}
    escaped = {key: html.escape(value, quote=True) for key, value in plain.items()}
    rendered_subject = " ".join(subject.substitute(plain).split())  # one line, always
    page = _layout().substitute(
        lang=language, subject=html.escape(rendered_subject), body=body.substitute(escaped)
    )
    return RenderedMail(rendered_subject, text.substitute(plain), page, language)
