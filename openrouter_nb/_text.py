"""Text helpers shared by every layer (it imports nothing of ours): one-line shortening, key
redaction, ``{name}`` interpolation. Model output is rendered by :mod:`openrouter_nb.render`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_KEY_SHAPE = re.compile(r"sk-or-v1-[0-9a-f]{8,}", re.IGNORECASE)
#: A key shorter than this is not looked for in text: it would match ordinary words.
MIN_KEY_LENGTH = 8


def redact(text: str, api_key: str | None = None) -> str:
    """Remove ``api_key`` and anything shaped like an OpenRouter key (``sk-or-v1-`` and hex
    digits) from ``text``."""
    key = (api_key or "").strip()
    if len(key) >= MIN_KEY_LENGTH:
        text = text.replace(key, "sk-or-…")
    return _KEY_SHAPE.sub("sk-or-v1-…", text)


def shorten(text: str | None, width: int = 80) -> str:
    """One line, at most ``width`` characters."""
    if not text:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ``{{name}}`` (escaped, left alone) or ``{name}`` (a candidate for interpolation)
_PLACEHOLDER = re.compile(r"\{\{[^\W\d]\w*\}\}|\{([^\W\d]\w*)\}")
_MISSING = object()


def interpolate(template: str, namespace: Mapping[str, Any],
                hidden: Mapping[str, Any] | None = None) -> str:
    """Replace ``{name}`` by ``str(namespace[name])``; every other brace stays as written.

    Only a lone ``{identifier}`` whose name is in ``namespace`` is replaced: ``{{x}}``,
    ``{}``, ``{1}``, ``{a.b}``, ``{x:>3}``, JSON and dict literals are left alone. Names in
    ``hidden`` (IPython's ``In``, ``Out``, ``_``…) are skipped unless reassigned.
    """
    hidden = hidden or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        value = namespace.get(name, _MISSING)
        if value is _MISSING or (name in hidden and hidden[name] is value):
            return match.group(0)
        return str(value)

    return _PLACEHOLDER.sub(replace, template)


def placeholders(template: str) -> list[str]:
    """The ``{name}`` placeholders of ``template``, in order of first appearance."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) and match.group(1) not in names:
            names.append(match.group(1))
    return names
