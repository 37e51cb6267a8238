"""The notebook layer: magics, the streaming answer display and widgets.

The only layer that imports IPython and ipywidgets (``tests/test_layers.py`` holds it).
``magics`` and ``display`` import IPython only; ``widgets``, ``picker``, ``compare_view`` and
``progress`` import ipywidgets and are loaded when a widget is first made.
"""

from __future__ import annotations

from typing import Any


def notebook_progress() -> Any:
    """A batch progress bar when running in a Jupyter kernel, else ``None``."""
    try:
        from IPython.core.getipython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    shell = get_ipython()
    if shell is None or "ipykernel" not in type(shell).__module__:
        return None
    from .progress import batch_progress_bar

    return batch_progress_bar()
