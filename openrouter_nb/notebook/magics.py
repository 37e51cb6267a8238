"""``%%openrouter`` (ask, compare, chat, tool tasks, attachments) and ``%openrouter SUBCOMMAND``
(the table in :mod:`openrouter_nb.notebook.commands`: log, quota, models, picker, chats, reset,
budget, cache, stats, profile, cost, record, replay, sandbox, key, help).

A thin adapter: the cell magic turns flags into ``Session.ask`` options and hands the answer to
:class:`~openrouter_nb.notebook.display.StreamingDisplay`; ``--schema NAME`` passes a JSON
Schema dict or pydantic class from the notebook; ``--compare M1,M2`` sends the prompt to each
model through ``Session.compare`` and shows a
:class:`~openrouter_nb.notebook.compare_view.CompareView` (never streamed). The line magic
dispatches through ``SUBCOMMANDS`` (``commands.COMMANDS``); ``models`` and ``picker`` read the
session's catalog. All act on the default session (``openrouter_nb.session.get_session()``). httpx, pandas and
ipywidgets load on first use, so ``%load_ext openrouter_nb`` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.utils.process import arg_split  # type: ignore[attr-defined]  # per platform, no __all__

from .._text import interpolate, placeholders
from ..api.errors import OpenRouterError
from . import attach
from .commands import COMMANDS, default_session
from .display import FORMATS, DisplayTarget, StreamingDisplay, live_streaming_enabled
from .flags import did_you_mean, unquote
from .terminal import TerminalDisplay, compare_text, is_terminal

if TYPE_CHECKING:  # pragma: no cover
    from argparse import Namespace

    from IPython.core.interactiveshell import InteractiveShell

    from ..answer import Answer
    from ..conversation import Conversation
    from ..session import Session

LOG_DEFAULT_ROWS = 20
LOG_TEXT_WIDTH = 60
_MISSING = object()


_F = TypeVar("_F", bound=Callable[..., Any])


def _typed(decorator: Any) -> Callable[[_F], _F]:
    """IPython's magic decorators, typed as keeping the method: their stubs differ between
    IPython 8 and 9 (9's reject a method with its own signature), their behaviour does not."""
    typed: Callable[[_F], _F] = decorator
    return typed


class Interrupted(KeyboardInterrupt):
    """Raised by ``%%openrouter`` after an interrupt, once its output is finished.

    Still a ``KeyboardInterrupt``, so Run All stops at this cell as Jupyter users expect (a
    swallowed interrupt would let the next cells run); IPython shows this one line instead of
    a traceback through httpx and the sandbox (``_render_traceback_``).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self}"]






@magics_class
class OpenRouterMagics(Magics):
    """The ``openrouter`` line and cell magics. ``clock`` and ``target_factory`` are injectable."""

    clock: Callable[[], float] = staticmethod(time.monotonic)
    target_factory: Callable[[], DisplayTarget] | None = None

    def _terminal(self) -> bool:
        """Plain text written as it comes (terminal IPython), not mime bundles."""
        return is_terminal(self.shell)

    # -- %%openrouter ------------------------------------------------------------------------------
    @magic_arguments("%openrouter")
    @argument("-m", "--model", default=None, metavar="MODEL",
              help="model id (default: the session's, openrouter/free)")
    @argument("--system", default=None, metavar="TEXT", help="system prompt")
    @argument("--max-tokens", type=int, default=None, metavar="N",
              help="cap on the answer's length")
    @argument("--temperature", type=float, default=None, metavar="T", help="sampling temperature")
    @argument("--seed", type=int, default=None, metavar="N", help="sampling seed (where supported)")
    @argument("--schema", default=None, metavar="NAME",
              help="a JSON Schema dict or pydantic class in the notebook: the answer must "
                   "match it (re-asked up to --retries times)")
    @argument("--retries", type=int, default=None, metavar="N",
              help="extra attempts after retryable failures (default 2)")
    @argument("--fallback", default=None, metavar="M1,M2",
              help="comma-separated models to try next, e.g. a/b:free,c/d:free")
    @argument("--compare", default=None, metavar="M1,M2,...",
              help="send the prompt to each of these models in parallel and show the answers "
                   "side by side (never streamed)")
    @argument("--out", default=None, metavar="NAME",
              help="store the Answer (with --compare: a DataFrame) in this variable")
    @argument("--format", default="markdown", choices=FORMATS,
              help="markdown (default), text, json (pretty-printed) or code (offered as "
                   "the next cell)")
    @argument("--allow-sensitive", action="store_true",
              help="send even if the prompt holds keys or personal data (refused by default)")
    @argument("--chat", nargs="?", const="", default=None, metavar="NAME",
              help="continue the conversation NAME (a bare --chat: the last one), so the "
                   "model sees the earlier turns; kept in the ledger across kernel restarts")
    @argument("--history", type=int, default=None, metavar="N",
              help="with --chat: resend only the last N turns")
    @argument("--reasoning", default=None, metavar="LEVEL",
              help="reasoning models: low, medium or high effort, off, hide (think but "
                   "leave the reasoning out), or a token cap")
    @argument("--tools", default=None, metavar="F1,F2",
              help="functions in the notebook the model may call (a bounded tool task)")
    @argument("--max-steps", type=int, default=None, metavar="N",
              help="with --tools: at most N model calls for the task (default 5)")
    @argument("--go-ahead", action="store_true",
              help="with --tools: start even when today's quota cannot cover --max-steps")
    @argument("--no-stream", action="store_true",
              help="show the answer only when complete (see OPENROUTER_NB_STREAM_DISPLAY)")
    @argument("--no-cache", action="store_true",
              help="send even when %%openrouter cache on holds an identical answer")
    @argument("--image", action="append", default=None, metavar="PATH|URL|{var}",
              help="attach an image (repeatable): a file, an https URL, or {var} for a PIL "
                   "image or matplotlib figure; {var} in the cell body places it there")
    @argument("--file", action="append", default=None, metavar="PATH|{var}",
              help="attach a PDF, text or CSV file, or {var} for a DataFrame (repeatable)")
    @argument("--max-side", type=int, default=None, metavar="N",
              help="downscale attached images to at most N pixels a side")
    @argument("--pdf-engine", default=None, metavar="ENGINE",
              help="PDF parsing: cloudflare-ai (free, the default), mistral-ocr, native")
    @no_var_expand  # {var} in --image/--file names a variable; IPython would stringify it
    @_typed(cell_magic("openrouter"))
    def openrouter_cell(self, line: str, cell: str) -> None:
        """Ask a model; the cell body is the prompt.

        ``{name}`` is replaced by the variable ``name`` from the notebook; every other brace
        (JSON, dict literals, ``{{x}}``, ``{x:>3}``) is sent as written. The answer streams
        into one output (``OPENROUTER_NB_STREAM_DISPLAY=final`` or ``--no-stream``: shown
        once, when complete) and ends with a footer naming the model that answered.
        ``--schema NAME`` validates the answer against a JSON Schema dict or pydantic class
        and shows the parsed data; ``--compare M1,M2,...`` asks each model in parallel and
        shows them side by side. Subcommands: ``%openrouter help``.
        """
        args = self._parse(line)
        for name, value in vars(args).items():
            setattr(args, name, unquote(value))
        shell = self.shell
        namespace = shell.user_ns if shell is not None else {}
        hidden = shell.user_ns_hidden if shell is not None else {}
        prompt = interpolate(cell, namespace, hidden)
        warn_placeholders(cell, namespace, hidden)
        session = default_session()
        options: dict[str, Any] = {
            name: getattr(args, name)
            for name in ("system", "max_tokens", "temperature", "seed", "retries", "history")
            if getattr(args, name) is not None
        }
        if args.reasoning is not None:
            options["reasoning"] = reasoning_flag(args.reasoning)
        if args.schema:
            options["schema"] = lookup_schema(args.schema, namespace)
        if args.allow_sensitive:
            options["allow_sensitive"] = True
        options.update({k: v for k, v in (("max_side", args.max_side),
                                          ("pdf_engine", args.pdf_engine)) if v is not None})
        prompt = attach.cell_prompt(cell, args, namespace, hidden, options)
        attach.show_thumbnails(prompt, options)
        if args.no_cache:
            options["cache"] = False
        options.update(tool_flags(args, namespace))
        if args.compare is not None:
            return self._compare(prompt, args, options, session, namespace)
        if args.fallback:
            options["fallback"] = split_models(args.fallback)
        answer = self._ask(prompt, args, options, session)
        if answer is not None and args.out:
            namespace[args.out] = answer
        return None

    def _view(self, args: Namespace) -> StreamingDisplay | TerminalDisplay:
        """Where the answer goes: plain text in a terminal, else one updatable output."""
        if self._terminal():
            return TerminalDisplay(fmt=args.format, live=not args.no_stream)
        target = self.target_factory() if self.target_factory is not None else None
        return StreamingDisplay(live=live_streaming_enabled() and not args.no_stream,
                                fmt=args.format, target=target, clock=self.clock,
                                shell=self.shell)

    def _ask(self, prompt: str, args: Namespace, options: dict[str, Any],
             session: Session) -> Answer | None:
        """Stream one answer into its view; None after an error (shown, not raised).

        An interrupt finishes the view (the pipeline has written the row and settled the
        slot) and is raised again as :class:`Interrupted`: one line, and Run All stops.
        """
        view = self._view(args)
        conversation = self._conversation(args, options) if args.chat is not None else None
        view.start(args.model or (conversation and conversation.model) or session.model)
        unsubscribe = session.quota.subscribe(view.on_quota)
        try:
            if conversation is not None:
                answer = conversation.ask(prompt, model=args.model, stream=not args.no_stream,
                                          on_delta=view.on_delta, on_event=view.on_event,
                                          **options)
            else:
                answer = session.ask(prompt, args.model, stream=not args.no_stream,
                                     on_delta=view.on_delta, on_event=view.on_event, **options)
        except OpenRouterError as error:
            view.fail(error)
            return None
        except KeyboardInterrupt:
            view.interrupted()
            raise Interrupted(f"stopped after {len(view.text):,} characters; the row is in "
                              "%openrouter log") from None
        finally:
            unsubscribe()
        view.finish(answer)
        return answer

    @staticmethod
    def _conversation(args: Namespace, options: dict[str, Any]) -> Conversation:
        """The conversation ``--chat NAME`` continues: this kernel's, the ledger's, or new."""
        from .. import conversation as chats
        from ..session import get_session

        last = chats.last_conversation()
        name = args.chat or (last.name if last else "chat")
        found = chats.conversations().get(name)
        if found is None:
            try:
                found = chats.Conversation.resume(name, session=get_session)
            except KeyError:
                found = chats.Conversation(args.model, system=options.pop("system", None),
                                           name=name, session=get_session)
        elif "system" in options and options["system"] != found.system:
            raise UsageError(f"--system is set when a conversation starts; {name!r} has "
                             f"{found.turns} turns. Use %openrouter reset {name} first.")
        options.pop("system", None)
        chats.use(found)
        return found

    def _compare(self, prompt: str, args: Namespace, options: dict[str, Any],
                 session: Session, namespace: dict[str, Any]) -> None:
        """``--compare``: one view, shown once when every model has answered; returns nothing."""
        from IPython.display import display

        from .compare_view import CompareView

        models = split_models(args.compare)
        if not models:
            raise UsageError("--compare needs model ids separated by commas, e.g. "
                             "--compare google/gemma-3-27b-it:free,openai/gpt-oss-20b:free")
        if args.model or args.fallback:
            raise UsageError("--compare names the models itself: leave out -m and --fallback.")
        if args.chat is not None:
            raise UsageError("--chat and --compare do not go together: compare models in "
                             "separate cells, or fork the conversation.")
        results = session.compare(prompt, models, **options)
        if self._terminal():
            from ..comparison import compare_frame

            print(compare_text(models, results))
            if args.out:
                namespace[args.out] = compare_frame(models, results)
            return
        view = CompareView(models, results)
        display(view)
        if args.out:
            namespace[args.out] = view.frame()

    def _parse(self, line: str) -> Namespace:
        """The cell magic's flags: never abbreviated, a near miss named (did you mean)."""
        parser = self.openrouter_cell.parser
        parser.allow_abbrev = False
        try:
            args: Namespace = parse_argstring(self.openrouter_cell, line)
        except UsageError as error:
            raise UsageError(did_you_mean(str(error), parser._option_string_actions)) from None
        return args

    # -- %openrouter SUBCOMMAND -------------------------------------------------------------------
    #: subcommand -> function (see commands.py)
    SUBCOMMANDS: dict[str, Callable[[list[str]], Any]] = COMMANDS

    @_typed(line_magic("openrouter"))
    def openrouter_line(self, line: str) -> Any:
        """%openrouter log [N] | quota | models [FILTERS] | picker | budget N|off | sandbox on|off
        | key | help

        ``log``: the ledger, newest first; ``quota``: the live meter; ``models``: the catalog
        as a DataFrame (free models unless ``--all``; ``--vision``, ``--tools``,
        ``--structured``, ``--min-context N``, ``--refresh``); ``picker``: choose a free model
        and pin it as the default; ``budget``: cap the requests of this session; ``sandbox``:
        switch the default session; ``key``: masked key entry (memory only); ``help``: a short
        guide. Ask with ``%%openrouter``.
        """
        words = arg_split(line)
        name, rest = (words[0], words[1:]) if words else ("help", [])
        command = self.SUBCOMMANDS.get(name.lower())
        if command is None:
            print(f"%openrouter: unknown subcommand {name!r}. "
                  f"Subcommands: {', '.join(sorted(self.SUBCOMMANDS))} (%openrouter help).")
            return None
        return command(rest)

def warn_placeholders(cell: str, namespace: Mapping[str, Any],
                      hidden: Mapping[str, Any]) -> list[str]:
    """Warn (on stderr) about ``{name}`` placeholders with no variable: they are sent as written."""
    unknown = [name for name in placeholders(cell)
               if interpolate("{" + name + "}", namespace, hidden) == "{" + name + "}"]
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        verb = "is not a variable" if len(unknown) == 1 else "are not variables"
        print(f"note: {names} {verb} in the notebook, so the prompt keeps "
              f"{'it' if len(unknown) == 1 else 'them'} as written. Define "
              f"{'it' if len(unknown) == 1 else 'them'} first to fill "
              f"{'it' if len(unknown) == 1 else 'them'} in.", file=sys.stderr)
    return unknown


def reasoning_flag(text: str) -> str | int:
    """``--reasoning`` as ``reasoning=``: a word, or a whole number (a token cap)."""
    return int(text) if text.strip().isdigit() else text


def split_models(text: str) -> list[str]:
    """``"a/b:free, c/d:free,"`` → ``["a/b:free", "c/d:free"]``."""
    return [model.strip() for model in text.split(",") if model.strip()]


def lookup_schema(name: str, namespace: Mapping[str, Any]) -> Any:
    """The schema named ``name`` (``x`` or ``module.x``) in the notebook; UsageError otherwise."""
    head, *attributes = name.split(".")
    value = namespace.get(head, _MISSING)
    for attribute in attributes:
        value = getattr(value, attribute, _MISSING) if value is not _MISSING else _MISSING
    if value is _MISSING:
        raise UsageError(f"--schema {name}: no variable {name!r} in the notebook. Define a JSON "
                         "Schema dict or a pydantic BaseModel class by that name first.")
    if not (isinstance(value, dict) or (isinstance(value, type)
                                        and hasattr(value, "model_json_schema"))):
        raise UsageError(f"--schema {name}: {name!r} is a {type(value).__name__}, not a JSON "
                         "Schema dict or a pydantic BaseModel class.")
    return value


def tool_flags(args: Namespace, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """``--tools f,g`` (functions from the notebook), ``--max-steps``, ``--go-ahead``."""
    options: dict[str, Any] = {}
    if args.tools:
        tools = []
        for name in split_models(args.tools):
            value = namespace.get(name, _MISSING)
            if value is _MISSING or not callable(value):
                raise UsageError(f"--tools {name}: no function {name!r} in the notebook. "
                                 "Define it (def or @orn.tool) first.")
            tools.append(value)
        options["tools"] = tools
    elif args.max_steps is not None or args.go_ahead:
        raise UsageError("--max-steps and --go-ahead bound a tool task: give --tools too.")
    if args.max_steps is not None:
        options["max_steps"] = args.max_steps
    if args.go_ahead:
        options["go_ahead"] = True
    return options


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register the magics (``%load_ext openrouter_nb``).

    In a shell with live streaming display, the in-process sandbox answers at a realistic
    speed by default (see :mod:`openrouter_nb.speed`).
    """
    from .. import speed

    speed.set_interactive_default("realistic" if live_streaming_enabled() else None)
    ipython.register_magics(OpenRouterMagics)
