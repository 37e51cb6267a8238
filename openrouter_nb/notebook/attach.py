"""Attachments in ``%%openrouter`` cells: ``--image``, ``--file``, ``{image}`` in the body, and
the thumbnails shown with the answer.

``--image PATH|URL|{var}`` and ``--file PATH|{var}`` (repeatable) attach after the prompt;
``{var}`` in the cell body, where ``var`` is a PIL image, a matplotlib figure or an
``Attachment``, places that image there (the text around it is interpolated as usual).
Thumbnails are small sanitized HTML: ``<img>`` only for base64 ``data:image/...`` URLs made
here, names escaped; anything else is named, never embedded.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

from .._text import _PLACEHOLDER, interpolate, is_dunder
from ..attachments import Attachment, AttachmentError, attachment, is_attachable
from .flags import unquote

__all__ = ["cell_prompt", "thumbnails_html", "show_thumbnails"]

THUMB_SIDE = 96
_SAFE_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+")


def _lookup(text: str, namespace: Mapping[str, Any]) -> Any:
    """``{var}`` -> the variable (an image or table named after it); a path or URL as written
    (quotes removed)."""
    text = unquote(text.strip())
    match = re.fullmatch(r"\{([^\W\d]\w*)\}", text)
    if match is None:
        return text
    name = match.group(1)
    if name not in namespace or is_dunder(name):
        raise UsageError(f"--image/--file {text}: no variable {name!r} in the notebook.")
    value = namespace[name]
    if isinstance(value, (Attachment, str, bytes)) or isinstance(value, tuple):
        return value
    suffix = ".csv" if hasattr(value, "to_csv") else ".png"
    return attachment(value, name=name + suffix)


def cell_prompt(cell: str, args: Any, namespace: Mapping[str, Any],
                hidden: Mapping[str, Any] | None, options: dict[str, Any]) -> Any:
    """The prompt of a cell (a ``str``, or a list of text and placed images, which ``ask``,
    ``chat`` and ``compare`` take alike) and, in ``options``, what ``--image``/``--file``
    attach. Attachment errors become a short ``UsageError``."""
    sources = [_lookup(value, namespace) for value in
               [*(getattr(args, "image", None) or ()), *(getattr(args, "file", None) or ())]]
    try:
        if sources:
            options["attachments"] = [attachment(s, max_side=options.get("max_side"))
                                      for s in sources]
        return _placed(cell, namespace, hidden, options.get("max_side"))
    except AttachmentError as error:
        raise UsageError(str(error)) from None


def _placed(cell: str, namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None,
            max_side: int | None) -> str | list[Any]:
    pieces: list[Any] = []
    start = 0
    for match in _PLACEHOLDER.finditer(cell):
        name = match.group(1)
        value = namespace.get(name) if name else None
        if name and not is_dunder(name) and is_attachable(value) and not (
                hidden and name in hidden and hidden[name] is value):
            pieces.append(interpolate(cell[start:match.start()], namespace, hidden))
            pieces.append(attachment(value, max_side=max_side, name=f"{name}.png"
                                     if not isinstance(value, Attachment) else None))
            start = match.end()
    if not pieces:
        return interpolate(cell, namespace, hidden)
    pieces.append(interpolate(cell[start:], namespace, hidden))
    return [p for p in pieces if not isinstance(p, str) or p]


def _sent(prompt: str | list[Any], options: Mapping[str, Any]) -> list[Attachment]:
    placed = [p for p in prompt if isinstance(p, Attachment)] if isinstance(prompt, list) else []
    return [*placed, *(options.get("attachments") or ())]


def _thumb_url(item: Attachment) -> str | None:
    if item.kind != "image" or item.data is None:
        return None
    data, mime = item.data, item.mime
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((THUMB_SIDE, THUMB_SIDE))
            buffer = io.BytesIO()
            image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(
                buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    except Exception:  # no Pillow (or an image it cannot read): the original, if small
        if len(data) > 200_000:
            return None
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return url if _SAFE_IMAGE.fullmatch(url) else None


def _label(item: Attachment) -> str:
    pixels = f" {item.width}×{item.height}" if item.width else ""
    return f"{item.name}{pixels}"


def thumbnails_html(items: list[Attachment]) -> str:
    """Small, sanitized HTML showing each attachment (images as thumbnails)."""
    tiles = []
    for item in items:
        label = html.escape(_label(item))
        url = _thumb_url(item)
        picture = (f'<img src="{url}" alt="{label}" style="max-height:{THUMB_SIDE}px;'
                   f'max-width:{THUMB_SIDE}px;display:block">' if url else
                   f'<div style="font-size:0.8em">{html.escape(item.kind.upper())}</div>')
        tiles.append(f'<figure style="margin:0 8px 4px 0;display:inline-block">{picture}'
                     f'<figcaption style="font-size:0.75em">{label}</figcaption></figure>')
    return '<div class="openrouter-attachments">' + "".join(tiles) + "</div>"


def show_thumbnails(prompt: str | list[Any], options: Mapping[str, Any]) -> None:
    """Display what this cell sends, if it sends attachments."""
    items = _sent(prompt, options)
    if not items:
        return
    from IPython.display import display

    plain = "sent: " + ", ".join(_label(i) for i in items)
    display({"text/plain": plain, "text/html": thumbnails_html(items)}, raw=True)
