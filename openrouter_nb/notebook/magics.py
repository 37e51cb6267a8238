"""``%%openrouter`` (ask) and ``%openrouter SUBCOMMAND`` (log, quota, budget, sandbox, key, help).

A thin adapter: the cell magic turns flags into ``Session.ask`` options and hands the answer to
:class:`~openrouter_nb.notebook.display.StreamingDisplay`; the line magic dispatches through
``SUBCOMMANDS``. Both act on the default session (``openrouter_nb.session.get_session()``).
httpx, pandas and ipywidgets load on first use, so ``%load_ext openrouter_nb`` stays fast.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.utils.process import arg_split

from ..api.errors import OpenRouterError
from .display import FORMATS, DisplayTarget, StreamingDisplay, live_streaming_enabled

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    from ..session import Session

LOG_DEFAULT_ROWS = 20
LOG_TEXT_WIDTH = 60
# ``{{name}}`` (escaped, left alone) or ``{name}`` (a candidate for interpolation)
_PLACEHOLDER = re.compile(r"\{\{[^\W\d]\w*\}\}|\{([^\W\d]\w*)\}")
_MISSING = object()

HELP = """\
%%openrouter [-m MODEL] [--system TEXT] [--max-tokens N] [--temperature T] [--seed N]
             [--retries N] [--fallback M1,M2] [--out NAME] [--format markdown|text|json|code]
             [--no-stream]
    The cell is the prompt; {name} is replaced by the variable `name`, other braces stay.
    The footer names the model that answered (and says so when the sandbox simulated it).

%openrouter log [N]        the last N ledger rows (default 20), newest first
%openrouter quota          the live quota meter (minute and day, countdown, budget)
%openrouter budget N|off   allow at most N more requests in this session
%openrouter sandbox on|off switch between the offline sandbox and the configured service
%openrouter key            enter a key in a masked field (kept in memory only)
%openrouter help           this text

Full flag help: %%openrouter?   Python API: import openrouter_nb as orn; orn.ask(...)"""


def interpolate(template: str, namespace: Mapping[str, Any],
                hidden: Mapping[str, Any] | None = None) -> str:
    """Replace ``{name}`` by ``str(namespace[name])``; every other brace stays as written.

    Only a lone ``{identifier}`` whose name is in ``namespace`` is replaced: ``{{x}}``,
    ``{}``, ``{1}``, ``{a.b}``, ``{x:>3}``, JSON and dict literals are left alone. IPython's
    own hidden names (``In``, ``Out``, ``_``, …) are not interpolated unless reassigned.
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


def _unquote(value: Any) -> Any:
    """IPython splits magic lines without POSIX rules: ``--system "Be terse."`` keeps quotes."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _default_session() -> Session:
    from ..session import get_session

    return get_session()


@magics_class
class OpenRouterMagics(Magics):
    """The ``openrouter`` line and cell magics. ``clock`` and ``target_factory`` are injectable."""

    clock: Callable[[], float] = staticmethod(time.monotonic)  # type: ignore[assignment]
    target_factory: Callable[[], DisplayTarget] | None = None

    # -- %%openrouter ------------------------------------------------------------------------------
    @magic_arguments("%openrouter")
    @argument("-m", "--model", default=None, metavar="MODEL",
              help="model id (default: the session's, openrouter/free)")
    @argument("--system", default=None, metavar="TEXT", help="system prompt")
    @argument("--max-tokens", type=int, default=None, metavar="N",
              help="cap on the answer's length")
    @argument("--temperature", type=float, default=None, metavar="T", help="sampling temperature")
    @argument("--seed", type=int, default=None, metavar="N", help="sampling seed (where supported)")
    @argument("--retries", type=int, default=None, metavar="N",
              help="extra attempts after retryable failures (default 2)")
    @argument("--fallback", default=None, metavar="M1,M2",
              help="comma-separated models to try next, e.g. a/b:free,c/d:free")
    @argument("--out", default=None, metavar="NAME", help="store the Answer in this variable")
    @argument("--format", default="markdown", choices=FORMATS,
              help="markdown (default), text, json (pretty-printed) or code (offered as "
                   "the next cell)")
    @argument("--no-stream", action="store_true",
              help="show the answer only when complete (see OPENROUTER_NB_STREAM_DISPLAY)")
    @cell_magic("openrouter")
    def openrouter_cell(self, line: str, cell: str) -> None:
        """Ask a model; the cell body is the prompt.

        ``{name}`` is replaced by the variable ``name`` from the notebook; every other brace
        (JSON, dict literals, ``{{x}}``, ``{x:>3}``) is sent as written. The answer streams
        into one output (``OPENROUTER_NB_STREAM_DISPLAY=final`` or ``--no-stream``: shown
        once, when complete) and ends with a footer naming the model that answered.
        Subcommands: ``%openrouter help``.
        """
        args = parse_argstring(self.openrouter_cell, line)
        for name, value in vars(args).items():
            setattr(args, name, _unquote(value))
        shell = self.shell
        namespace = shell.user_ns if shell is not None else {}
        hidden = shell.user_ns_hidden if shell is not None else {}
        prompt = interpolate(cell, namespace, hidden)
        session = _default_session()
        options: dict[str, Any] = {
            name: getattr(args, name)
            for name in ("system", "max_tokens", "temperature", "seed", "retries")
            if getattr(args, name) is not None
        }
        if args.fallback:
            options["fallback"] = [m.strip() for m in args.fallback.split(",") if m.strip()]
        live = live_streaming_enabled() and not args.no_stream
        target = self.target_factory() if self.target_factory is not None else None
        view = StreamingDisplay(live=live, fmt=args.format, target=target, clock=self.clock,
                                shell=shell)
        view.start(args.model or session.model)
        unsubscribe = session.quota.subscribe(view.on_quota)
        try:
            answer = session.ask(prompt, args.model, stream=not args.no_stream,
                                 on_delta=view.on_delta, on_event=view.on_event, **options)
        except OpenRouterError as error:
            view.fail(error)
            return None
        finally:
            unsubscribe()
        view.finish(answer)
        if args.out:
            namespace[args.out] = answer
        return None

    # -- %openrouter SUBCOMMAND -------------------------------------------------------------------
    #: subcommand -> method name; later issues add models, profile, cost here.
    SUBCOMMANDS: dict[str, str] = {
        "budget": "_cmd_budget",
        "help": "_cmd_help",
        "key": "_cmd_key",
        "log": "_cmd_log",
        "quota": "_cmd_quota",
        "sandbox": "_cmd_sandbox",
    }

    @line_magic("openrouter")
    def openrouter_line(self, line: str) -> Any:
        """%openrouter log [N] | quota | budget N|off | sandbox on|off | key | help

        ``log``: the ledger, newest first; ``quota``: the live meter; ``budget``: cap the
        requests of this session; ``sandbox``: switch the default session; ``key``: masked
        key entry (memory only); ``help``: a short guide. Ask with ``%%openrouter``.
        """
        words = arg_split(line)
        name, rest = (words[0], words[1:]) if words else ("help", [])
        method = self.SUBCOMMANDS.get(name.lower())
        if method is None:
            print(f"%openrouter: unknown subcommand {name!r}. "
                  f"Subcommands: {', '.join(sorted(self.SUBCOMMANDS))} (%openrouter help).")
            return None
        return getattr(self, method)(rest)

    def _cmd_help(self, args: list[str]) -> None:
        print(HELP)

    def _cmd_log(self, args: list[str]) -> pd.DataFrame | None:
        try:
            rows = int(args[0]) if args else LOG_DEFAULT_ROWS
        except ValueError:
            print(f"%openrouter log: N must be a number of rows, not {args[0]!r}.")
            return None
        return log_frame(_default_session(), rows)

    def _cmd_quota(self, args: list[str]) -> None:
        from IPython.display import display

        from .widgets import quota_meter

        display(quota_meter(_default_session()))

    def _cmd_budget(self, args: list[str]) -> None:
        session = _default_session()
        if not args:
            state = "off" if session.budget is None else f"{session.budget_used}/{session.budget}"
            print(f"budget: {state} (set with %openrouter budget N, remove with budget off)")
            return
        if args[0].lower() in ("off", "none"):
            session.budget = None
        else:
            try:
                limit = int(args[0])
            except ValueError:
                print(f"%openrouter budget: N must be a whole number or 'off', not {args[0]!r}.")
                return
            if limit < 0:
                print("%openrouter budget: N must be 0 or more.")
                return
            session.budget, session.budget_used = limit, 0
        session.quota.note_budget(session.budget, session.budget_used)
        print("budget: off" if session.budget is None
              else f"budget: at most {session.budget} more requests in this session")

    def _cmd_sandbox(self, args: list[str]) -> None:
        from ..session import Session, set_session

        choice = args[0].lower() if args else ""
        if choice not in ("on", "off"):
            if choice:
                print(f"%openrouter sandbox: use 'on' or 'off', not {args[0]!r}.")
            print(f"mode: {_default_session().description}")
            return
        session = Session(sandbox=True if choice == "on" else None)
        set_session(session)
        print(f"mode: {session.description}")

    def _cmd_key(self, args: list[str]) -> None:
        from IPython.display import display

        from .widgets import KeyEntry

        display(KeyEntry())


def log_frame(session: Session, rows: int = LOG_DEFAULT_ROWS) -> pd.DataFrame:
    """The last ``rows`` attempts, newest first, long text trimmed for display."""
    from .._text import shorten
    from ..ledger import CORE_COLUMNS

    columns = [*CORE_COLUMNS, "error_message"]
    frame = session.ledger.dataframe(limit=rows, newest_first=True, columns=columns)
    for name in ("prompt", "response", "error_message"):
        frame[name] = frame[name].map(
            lambda value: shorten(value, LOG_TEXT_WIDTH) if isinstance(value, str) else value)
    return frame


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register the magics (``%load_ext openrouter_nb``)."""
    ipython.register_magics(OpenRouterMagics)
