"""Flags of the ``%openrouter`` subcommands: argparse that prints a usage line, never exits.

``%openrouter models`` and ``%openrouter picker`` take capability filters; a bad flag prints
one short message and the usage line (no traceback, nothing sent). The cell magic's flags
use IPython's ``magic_arguments`` instead (see :mod:`.magics`).
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable
from typing import Any, NoReturn

MODELS_USAGE = ("%openrouter models [--free|--all] [--vision] [--tools] [--structured] "
                "[--min-context N] [--refresh]")
PICKER_USAGE = "%openrouter picker [--vision] [--tools] [--structured] [--min-context N]"


def unquote(value: Any) -> Any:
    """IPython splits magic lines without POSIX rules: ``--system "Be terse."`` keeps quotes."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


class _ArgumentError(Exception):
    """A bad flag given to a subcommand (shown as a short usage message)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message)


def context_size(text: str) -> int:
    """A number of tokens: ``32768``, ``32k``, ``1m``."""
    value = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(value[-1:], 1)
    try:
        number = float(value[:-1] if scale > 1 else value) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of tokens: {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("the minimum context must be 0 or more")
    return int(number)


def _filter_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--vision", action="store_true", help="image input")
    parser.add_argument("--tools", action="store_true", help="tool calling")
    parser.add_argument("--structured", action="store_true", help="structured outputs")
    parser.add_argument("--min-context", type=context_size, default=None, metavar="N",
                        help="at least N tokens of context (32768, 32k, 1m)")
    parser.add_argument("-h", "--help", action="store_true", help="this text")
    return parser


def models_parser() -> argparse.ArgumentParser:
    """The flags of ``%openrouter models``."""
    parser = _Parser(prog="%openrouter models", add_help=False)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--free", dest="scope", action="store_const", const="free",
                       default="free", help="free models only (the default)")
    scope.add_argument("--all", dest="scope", action="store_const", const="all",
                       default="free", help="free and paid models")
    parser.add_argument("--refresh", action="store_true",
                        help="fetch the catalog again and say which free models came and went")
    return _filter_flags(parser)


def picker_parser() -> argparse.ArgumentParser:
    """The flags of ``%openrouter picker`` (the filters it starts with)."""
    return _filter_flags(_Parser(prog="%openrouter picker", add_help=False))


def parse_flags(parser: argparse.ArgumentParser, args: list[str], usage: str
                ) -> argparse.Namespace | None:
    """Parsed flags, or ``None`` after printing a short usage message (never a traceback)."""
    try:
        options = parser.parse_args([unquote(arg) for arg in args])
    except (_ArgumentError, argparse.ArgumentError) as error:
        print(f"{parser.prog}: {error}.\nusage: {usage}")
        return None
    if options.help:
        print(f"usage: {usage}\n" + "\n".join(
            f"  {_flag_names(action):<16} {action.help}"
            for action in parser._actions if action.option_strings))
        return None
    return options


def _flag_names(action: argparse.Action) -> str:
    """``--min-context N``: the flag's spellings and its value's name, for the usage text."""
    metavar = action.metavar
    shown = metavar if isinstance(metavar, str) else " ".join(metavar or ())
    return " ".join(filter(None, (", ".join(action.option_strings), shown)))


_UNRECOGNIZED = re.compile(r"unrecognized arguments?: (.*)", re.DOTALL)
_FLAG = re.compile(r"(?<!\S)(--?[A-Za-z][\w-]*)")


def did_you_mean(message: str, known: Iterable[str]) -> str:
    """``message`` (argparse's) with "did you mean --x?" for each unknown flag close to a known one.

    Flags are never abbreviated (``--max-token`` is not ``--max-tokens``), so a near miss
    is an error that names the flag it probably meant.
    """
    found = _UNRECOGNIZED.search(message)
    if found is None:
        return message
    known = sorted(set(known))
    hints = []
    for flag in _FLAG.findall(found.group(1)):
        close = difflib.get_close_matches(flag.split("=")[0], known, n=1, cutoff=0.7)
        if close:
            hints.append(f"{flag}: did you mean {close[0]}?")
    return f"{message} ({'; '.join(hints)})" if hints else message
