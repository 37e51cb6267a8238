"""How fast the in-process sandbox answers when nothing says otherwise.

The rule, in order:

1. ``OPENROUTER_NB_SANDBOX_SPEED=instant|realistic`` decides, if set.
2. Under pytest (``PYTEST_CURRENT_TEST`` is set) the sandbox is ``instant``.
3. Once the extension is loaded into IPython (a Jupyter kernel or terminal IPython) with live
   streaming display on (``OPENROUTER_NB_STREAM_DISPLAY`` is not ``final``), it is
   ``realistic``: each model's first-token delay and tokens per second, streamed chunk by
   chunk, so a workshop sees answers arrive as they would for real.
4. Otherwise (scripts, nbval and the lesson runner, which set the display to ``final``)
   ``instant``: no waiting, deterministic.

``Session(sandbox_options={"speed": ...})`` and ``%openrouter sandbox --speed`` override it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["SPEEDS", "SPEED_ENV", "default_speed", "set_interactive_default"]

SPEED_ENV = "OPENROUTER_NB_SANDBOX_SPEED"
SPEEDS = ("instant", "realistic")

_interactive: str | None = None


def set_interactive_default(speed: str | None) -> None:
    """The speed for an interactive shell (the notebook layer sets it when it loads)."""
    global _interactive
    _interactive = check(speed) if speed is not None else None


def check(speed: str) -> str:
    value = str(speed).strip().lower()
    if value not in SPEEDS:
        raise ValueError(f"The sandbox speed must be 'instant' or 'realistic', not {speed!r}.")
    return value


def default_speed(env: Mapping[str, str] | None = None) -> str:
    """The sandbox speed by the rule above."""
    env = os.environ if env is None else env
    chosen = env.get(SPEED_ENV, "").strip()
    if chosen:
        try:
            return check(chosen)
        except ValueError:
            raise ValueError(f"{SPEED_ENV} must be 'instant' or 'realistic', not "
                             f"{chosen!r:.40}.") from None
    if env.get("PYTEST_CURRENT_TEST"):
        return "instant"
    return _interactive or "instant"
