"""Static checks as part of the test command: the type checker on the package (it ships
``py.typed``) and the linter on the package, the tests and the benchmarks.

Both read their settings from ``pyproject.toml`` (``[tool.mypy]``, ``[tool.ruff]``) and are
installed by the ``test`` extra, so ``pip install -e ".[test]" && python -m pytest`` (the
README's command, which CI runs) runs them too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_mypy_finds_no_type_error() -> None:
    run = _run("mypy")
    assert run.returncode == 0, f"mypy (settings in pyproject.toml):\n{run.stdout}{run.stderr}"


def test_ruff_finds_no_lint_error() -> None:
    run = _run("ruff", "check", "--no-cache", "openrouter_nb", "tests", "benchmarks")
    assert run.returncode == 0, f"ruff check:\n{run.stdout}{run.stderr}"
