"""JSON from the wire into plain Python values, whatever the bytes say.

``load_json`` raises only ``ValueError`` (never ``RecursionError`` on deep nesting, and an
integer too long to convert becomes ``None``); strings never hold a lone surrogate (a JSON
``"\\ud800"`` escape becomes U+FFFD), so every string it returns can be written as UTF-8.
The ``as_*`` readers turn a value of the wrong type or out of range into ``None``: a usage
figure of ``1e400``, ``NaN``, ``true`` or forty digits is unknown, not an exception.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_INT", "as_count", "as_float", "as_int", "as_str", "dicts", "dumps", "load_json"]

#: Largest integer read as a number (JSON-safe, and fits a SQLite INTEGER).
MAX_INT = 2**53

_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _huge_int_as_none(text: str) -> int | None:
    return int(text) if len(text) <= 20 else None


def load_json(text: str) -> Any:
    """``json.loads`` that tolerates the blank lines OpenRouter sometimes sends first.

    Raises ``ValueError`` for anything that is not JSON, nested too deeply included.
    """
    text = text.strip()
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as error:
        if "integer string conversion" not in str(error):
            raise
        try:  # an integer of thousands of digits: unknown, like any other absurd number
            value = json.loads(text, parse_int=_huge_int_as_none)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
    if _LONE_SURROGATE_ESCAPE.search(text):
        value = _without_surrogates(value)
    return value


def _clean(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _without_surrogates(value: Any) -> Any:
    """``value`` with lone surrogates replaced in every string (keys too), iteratively."""
    if isinstance(value, str):
        return _clean(value)
    if not isinstance(value, (dict, list)):
        return value
    root: list[Any] = [value]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if isinstance(node, dict):
            node.clear()
        for key, item in items:
            if isinstance(item, str):
                item = _clean(item)
            elif isinstance(item, (dict, list)):
                stack.append(item)
            node[_clean(key) if isinstance(key, str) else key] = item
    return root[0]


def dumps(value: Any) -> str:
    """``json.dumps`` that never raises (a value it cannot write becomes its ``repr``)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def as_str(value: Any) -> str | None:
    """A string, or ``None`` for anything else."""
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """An integer within ±``MAX_INT`` (a whole float counts), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    return value if -MAX_INT <= value <= MAX_INT else None


def as_count(value: Any) -> int | None:
    """A token count: a non-negative ``as_int``, else ``None``."""
    number = as_int(value)
    return number if number is not None and number >= 0 else None


def as_float(value: Any) -> float | None:
    """A finite number as a float, else ``None`` (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > MAX_INT:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def dicts(value: Any) -> tuple[dict[str, Any], ...]:
    """The objects in a JSON array (anything else in it is dropped); ``()`` for a non-array."""
    if not isinstance(value, list):
        return ()
    return tuple(dict(item) for item in value if isinstance(item, Mapping))
