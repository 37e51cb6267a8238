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

#: Names IPython keeps for itself in a notebook's namespace, never a user's variable.
IPYTHON_NAMES = frozenset({"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_dh",
                           "_ih", "exit", "quit", "get_ipython"})
_IPYTHON_NUMBERED = re.compile(r"_i?\d+")  # _7 (output 7), _i7 (input 7)


def is_dunder(name: str) -> bool:
    """``__doc__``, ``__builtins__`` and the like: Python's names, never a user's."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def is_ipython_name(name: str) -> bool:
    """A name IPython keeps for itself: ``In``, ``Out``, ``_``, ``_i``, ``_7``, ``_i7``…"""
    return name in IPYTHON_NAMES or _IPYTHON_NUMBERED.fullmatch(name) is not None


def interpolate(template: str, namespace: Mapping[str, Any],
                hidden: Mapping[str, Any] | None = None) -> str:
    """Replace ``{name}`` by ``str(namespace[name])``; every other brace stays as written.

    Only a lone ``{identifier}`` whose name is in ``namespace`` is replaced: ``{{x}}``,
    ``{}``, ``{1}``, ``{a.b}``, ``{x:>3}``, JSON and dict literals are left alone, and so are
    unknown names and dunder names (``{__doc__}``). Passing ``hidden`` (IPython's
    ``user_ns_hidden``) says ``namespace`` is a notebook's: then only the user's own
    variables are used, never a name IPython keeps (:func:`is_ipython_name`), nor one in
    ``hidden`` that was not reassigned.
    """
    notebook = hidden is not None
    hidden = hidden or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None or is_dunder(name) or (notebook and is_ipython_name(name)):
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
