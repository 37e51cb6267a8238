"""The privacy guard over attachments (part of :mod:`openrouter_nb.prepare`).

Text parts are scanned by ``prepare`` itself (a DataFrame's CSV and a text file are text
parts). Here: the file parts. A PDF's text is extracted with pypdf (an optional dependency,
``openrouter-nb[attachments]``: a real parser, not a guess at the text streams) and scanned
with its file name; an image cannot be read, so the answer says so, once per session (an
image may hold personal data: a photo, a screenshot of an e-mail). ``allow_sensitive=True``
skips all of it, as for text.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import privacy
from .api.errors import SensitiveInputBlocked
from .attachments import decode_data_url, pdf_text
from .images import PDF
from .messages import Part

if TYPE_CHECKING:  # pragma: no cover
    from .call import Call, Engine

__all__ = ["IMAGE_NOTE", "guard", "has_images", "is_media", "media_tokens"]

IMAGE_NOTE = ("images are sent unread by the privacy guard: make sure they hold no personal "
              "data (said once per session)")
PDF_NOTE = "the privacy guard could not read a PDF's text (install pypdf to scan it)"
_told: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

Refuse = Callable[..., Any]


def _parts(call: Call, kind: str) -> list[Part]:
    return [p for m in call.messages for p in m.parts if isinstance(p, Part) and p.type == kind]


#: What the context check counts for an attachment (reference: images cost a few hundred
#: tokens at most; a parsed PDF page about 500): a rough size, not its base64 length.
IMAGE_TOKENS = 300
FILE_TOKENS_PER_KB = 5


def is_media(part: Any) -> bool:
    return isinstance(part, Part) and part.type in ("image_url", "file")


def media_tokens(part: Any) -> int:
    """A rough token count for an image or file part (0 for anything else)."""
    if not is_media(part):
        return 0
    if part.type == "image_url":
        return IMAGE_TOKENS
    return len(part.payload) * 3 // 4 // 1024 * FILE_TOKENS_PER_KB + 100


def has_images(call: Call) -> bool:
    return bool(_parts(call, "image_url"))


@lru_cache(maxsize=64)
def _file_findings(payload: str) -> tuple[tuple[privacy.Finding, ...], bool]:
    """(findings, whether the text could be read) of one file part; cached: a conversation
    resends its PDF every turn, and parts are immutable."""
    file = Part("file", payload).to_wire().get("file") or {}
    name = str(file.get("filename") or "")
    decoded = decode_data_url(str(file.get("file_data") or ""))
    text, readable = name, True
    if decoded is not None:
        mime, data = decoded
        body = pdf_text(data) if mime == PDF else data.decode("utf-8", "replace")
        readable = body is not None
        text += "\n" + (body or "")
    return tuple(privacy.scan(text)), readable


def guard(engine: Engine, call: Call, refuse: Refuse) -> Call:
    """``call`` with a note where the guard could not read, or a refusal (nothing sent)."""
    findings: list[privacy.Finding] = []
    unreadable = False
    for part in _parts(call, "file"):
        found, readable = _file_findings(part.payload)
        findings.extend(found)
        unreadable = unreadable or not readable
    if findings:
        refuse(engine, call, SensitiveInputBlocked(
            privacy.describe(findings) + " (in an attached file)"), keep_prompt=False)
    notes = []
    if has_images(call) and _first_time(engine, "images"):
        notes.append(IMAGE_NOTE)
    if unreadable and _first_time(engine, "pdf"):
        notes.append(PDF_NOTE)
    return replace(call, notes=(*call.notes, *notes)) if notes else call


def _first_time(engine: Engine, what: str) -> bool:
    try:
        told = _told.setdefault(engine, set())
    except TypeError:  # an engine that cannot be weakly referenced: say it every time
        return True
    if what in told:
        return False
    told.add(what)
    return True

