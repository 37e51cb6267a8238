"""Test-wide settings: every test and every notebook kernel runs offline and deterministic.

The kernels nbval starts inherit this process's environment, so setting it here is how the
notebooks are put in sandbox mode with final-only answer display (nbval compares the first
display of a handle with the saved output, so live streaming updates cannot be compared;
the streaming path is tested in tests/test_display.py instead).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

for _name in ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_NB_REPLAY"):
    os.environ.pop(_name, None)
os.environ["OPENROUTER_NB_SANDBOX"] = "1"
os.environ["OPENROUTER_NB_STREAM_DISPLAY"] = "final"
os.environ["OPENROUTER_NB_HOME"] = tempfile.mkdtemp(prefix="openrouter-nb-home-")

_current_notebook: list[Path] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give each notebook a fresh ledger folder before its kernel starts."""
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb" and (not _current_notebook or _current_notebook[-1] != path):
        _current_notebook.append(path)
        os.environ["OPENROUTER_NB_HOME"] = tempfile.mkdtemp(prefix=f"orn-{path.stem}-")
