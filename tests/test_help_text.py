"""``%openrouter help`` and the README name every ``%%openrouter`` flag and ``%openrouter`` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openrouter_nb.notebook.commands import COMMANDS, HELP
from openrouter_nb.notebook.magics import OpenRouterMagics

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _cell_flags() -> list[tuple[str, ...]]:
    """Each flag's spellings, e.g. ``("-m", "--model")``."""
    parser = OpenRouterMagics.openrouter_cell.parser  # type: ignore[attr-defined]
    return [tuple(action.option_strings) for action in parser._actions
            if action.option_strings and "--help" not in action.option_strings]


def _mentioned(spellings: tuple[str, ...], text: str) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)
               for option in spellings)


@pytest.mark.parametrize("spellings", _cell_flags(), ids=lambda spellings: spellings[-1])
def test_every_cell_flag_is_in_help_and_readme(spellings: tuple[str, ...]) -> None:
    assert _mentioned(spellings, HELP), f"%openrouter help does not mention {spellings}"
    assert _mentioned(spellings, README), f"README does not mention {spellings}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_is_in_help_and_readme(name: str) -> None:
    assert f"%openrouter {name}" in HELP, f"%openrouter help does not mention {name}"
    assert f"%openrouter {name}" in README, f"README does not mention %openrouter {name}"


def test_every_error_kind_of_a_call_is_in_the_readme_table() -> None:
    from openrouter_nb.api import errors

    kinds = {cls.kind for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.OpenRouterError)}
    not_of_a_call = {"error", "rate_limit", "home_folder", "cassette"}  # bases; not in the ledger
    missing = sorted(kind for kind in kinds - not_of_a_call if f"| `{kind}`" not in README
                     and f", `{kind}`" not in README)
    assert missing == []
