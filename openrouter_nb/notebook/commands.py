"""The ``%openrouter SUBCOMMAND`` line commands, one function each, dispatched by ``COMMANDS``.

Each takes the words after the subcommand and returns what the cell should show (or None).
They act on the default session (``openrouter_nb.session.get_session()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..api.errors import OpenRouterError
from .class_view import cmd_class
from .display import error_bundle
from .flags import MODELS_USAGE, PICKER_USAGE, models_parser, parse_flags, picker_parser
from .insight import cmd_cache, cmd_stats
from .terminal import is_terminal, picker_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..session import Session
    from .log_view import LogView

LOG_DEFAULT_ROWS = 20
LOG_TEXT_WIDTH = 60

HELP = """\
%%openrouter [-m MODEL] [--system TEXT] [--max-tokens N] [--temperature T] [--seed N]
             [--schema NAME] [--retries N] [--fallback M1,M2] [--compare M1,M2,...]
             [--out NAME] [--format markdown|text|json|code] [--no-stream]
             [--allow-sensitive] [--chat [NAME]] [--history N] [--reasoning LEVEL]
             [--no-cache] [--tools F1,F2] [--max-steps N] [--go-ahead]
             [--image PATH|URL|{var}] [--file PATH|{var}] [--max-side N]
             [--pdf-engine ENGINE]
    The cell is the prompt; {name} is replaced by the variable `name`, other braces stay.
    The footer names the model that answered (and says so when the sandbox simulated it).
    --schema NAME    NAME is a JSON Schema dict or a pydantic class in the notebook: the
                     answer is validated (re-asked up to --retries times) and --out stores
                     an Answer whose .data holds the parsed value
    --compare M1,M2  the same prompt to each model in parallel, side by side; --out stores
                     a DataFrame with one row per model
    --allow-sensitive  send even if the prompt holds keys, e-mail addresses, phone or card
                     numbers, IBANs (refused by default, before anything is sent)
    --chat [NAME]    continue conversation NAME (bare: the last one); the whole history
                     is resent each turn, so the footer shows the prompt tokens growing
    --history N      with --chat: resend only the last N turns (the footer says so)
    --reasoning LEVEL  reasoning models: low|medium|high effort, off, hide, or a token cap
                     (a model that spends all --max-tokens thinking: raise it, or go low)
    --tools F1,F2    functions in the notebook the model may call, at most --max-steps
                     model calls (default 5); --go-ahead starts even when today's quota
                     cannot cover them
    --image, --file  attach an image (file, https URL, {var}: PIL image or figure) or a
                     PDF/text/CSV file ({var}: a DataFrame); repeatable; --max-side N
                     downscales images, --pdf-engine cloudflare-ai|mistral-ocr|native

%openrouter log [N]        the last N attempts (default 20), newest first, one line each:
                           time, ✓/✗/■, model, latency, tokens, error, prompt;
                           .frame is its DataFrame, orn.log() the whole ledger
%openrouter quota          the live quota meter (minute and day, countdown, budget)
%openrouter models [--free|--all] [--vision] [--tools] [--structured] [--min-context N]
                   [--refresh]
                           the model catalog as a DataFrame (free models unless --all);
                           --refresh fetches it again and says which free models came and went
%openrouter picker [--vision] [--tools] [--structured] [--min-context N]
                           pick a free model by capability and pin it as the default
%openrouter chats          this kernel's conversations: turns, tokens, model
%openrouter reset [NAME]   forget a conversation (default: the last one); the ledger keeps it
%openrouter budget N|off   allow at most N more requests in this session
%openrouter class          a class on one key (instructors): each participant today;
                           class chart | class budgets | class budget N|off [--person P]
%openrouter cache on|off   answer identical requests from the ledger: nothing sent, no quota
                           used, footer "cached from HH:MM" (--no-cache: send one cell anyway)
%openrouter stats [--days N]
                           usage charts: today's requests by hour against the daily limit,
                           busiest minutes, latency and first token per model, outcomes,
                           tokens (orn.usage(); orn.pool_drift() for the free router's models)
%openrouter profile [NAME] list the profiles of openrouter_nb.toml, or switch to one
%openrouter cost MODEL [--all|--batch ID]
                           the logged calls of this session priced at MODEL (a :free id:
                           its paid twin), per call, total and per 1,000 calls
%openrouter record PATH|off   save every exchange to a cassette (never the key)
%openrouter replay PATH [--fallback]|off
                           answer from a cassette, no network (--fallback: unknown requests
                           go to the sandbox instead of failing)
%openrouter sandbox on|off [--speed instant|realistic]
                           switch between the offline sandbox and the configured service;
                           --speed realistic streams at each model's own speed (the default
                           in a notebook with live display), instant answers at once (scripts,
                           tests, nbval; also OPENROUTER_NB_SANDBOX_SPEED)
%openrouter sandbox faults the failures the sandbox can stage for teaching (see below)
%openrouter key            enter a key in a masked field (kept in memory only)
%openrouter help           this text

Full flag help: %%openrouter?   Python API: import openrouter_nb as orn; orn.ask(...)

Teaching faults (sandbox only): orn.get_session().sandbox.queue_fault("NAME") gives the next
request that failure, e.g. rate_limit_minute, rate_limit_day, upstream_429, provider_502,
timeout, moderation_403, truncated_stream; %openrouter sandbox faults lists them all."""


def default_session() -> Session:
    from ..session import get_session

    return get_session()


def cmd_help(args: list[str]) -> None:
    print(HELP)

def cmd_log(args: list[str]) -> LogView | None:
    """The newest rows as a compact table (``.frame``: the DataFrame; ``orn.log()``: all)."""
    from .log_view import LogView

    try:
        rows = int(args[0]) if args else LOG_DEFAULT_ROWS
    except ValueError:
        print(f"%openrouter log: N must be a number of rows, not {args[0]!r}.")
        return None
    return LogView(log_frame(default_session(), rows))

def cmd_chats(args: list[str]) -> pd.DataFrame | None:
    """This kernel's conversations, one row each."""
    import pandas as pd

    from ..conversation import conversations

    rows = []
    for name, chat in conversations().items():
        last = chat.answers[-1] if chat.answers else None
        rows.append({
            "conversation": name, "turns": chat.turns,
            "model": (last.model if last else None) or chat.model or default_session().model,
            "prompt_tokens (last turn)": last.usage.get("prompt_tokens") if last else None,
            "completion_tokens (all turns)": sum(
                a.usage.get("completion_tokens") or 0 for a in chat.answers),
        })
    if not rows:
        print("No conversations yet: start one with %%openrouter --chat NAME "
              "(or orn.chat()).")
        return None
    return pd.DataFrame(rows)


def cmd_reset(args: list[str]) -> None:
    """Start a conversation over (default: the last one); the ledger keeps its old turns."""
    from ..conversation import conversations, last_conversation

    chat = conversations().get(args[0]) if args else last_conversation()
    if chat is None:
        known = ", ".join(conversations()) or "none yet"
        print(f"%openrouter reset: no conversation {args[0] if args else ''} in this kernel "
              f"(conversations: {known}).")
        return
    chat.reset()
    print(f"{chat.name}: history forgotten; the next --chat {chat.name} starts at turn 1 "
          "(the old turns stay in the ledger).")


def cmd_quota(args: list[str]) -> None:
    from IPython.display import display

    from .widgets import quota_meter

    display(quota_meter())  # follows the default session across switches

def cmd_models(args: list[str]) -> pd.DataFrame | None:
    options = parse_flags(models_parser(), args, MODELS_USAGE)
    if options is None:
        return None
    catalog = default_session().catalog
    filters = {"free": True if options.scope == "free" else None,
               "vision": options.vision or None, "tools": options.tools or None,
               "structured": options.structured or None, "min_context": options.min_context}
    try:
        if options.refresh:
            had_copy = catalog.path.exists()
            diff = catalog.refresh()
            if had_copy:
                print(diff)
            else:
                models = catalog.models()
                print(f"Fetched the catalog: {len(models)} models, "
                      f"{sum(m.free for m in models)} free (no earlier copy to compare with).")
        frame = catalog.dataframe(**filters)
    except OpenRouterError as error:
        _show_error(error)
        return None
    if frame.empty:
        print("No model matches these filters (%openrouter models --help).")
    from .tables import nowrap

    return nowrap(frame)  # ids on one line

def cmd_picker(args: list[str]) -> None:
    from IPython.display import display

    from .picker import ModelPicker

    options = parse_flags(picker_parser(), args, PICKER_USAGE)
    if options is None:
        return
    if is_terminal():  # no widgets in a terminal: the table and how to pin one
        session = default_session()
        try:
            print(picker_text(session.catalog, current=session.model, vision=options.vision or None,
                              tools=options.tools or None, structured=options.structured or None,
                              min_context=options.min_context or None))
        except OpenRouterError as error:
            _show_error(error)
        return
    display(ModelPicker(default_session(), vision=options.vision, tools=options.tools,
                        structured=options.structured, min_context=options.min_context or 0))

def cmd_budget(args: list[str]) -> None:
    session = default_session()
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
        session.budget = limit  # counts from zero again
    print("budget: off" if session.budget is None
          else f"budget: at most {session.budget} more requests in this session")

def cmd_sandbox(args: list[str]) -> None:
    """``sandbox on|off [--speed instant|realistic]``, ``sandbox --speed X``, ``sandbox faults``."""
    from ..speed import SPEEDS

    words, speed, ok = _speed_flag(args)
    if not ok:
        return
    choice = words[0].lower() if words else ""
    if choice == "faults":
        print(_faults_text())
        return
    if choice not in ("on", "off", ""):
        print(f"%openrouter sandbox: use 'on', 'off', 'faults' or --speed {'|'.join(SPEEDS)}, "
              f"not {words[0]!r}.")
    if choice in ("on", "off"):
        changes: dict[str, Any] = {"sandbox": True if choice == "on" else None}
        if speed:
            changes["sandbox_options"] = {**(default_session().config.sandbox_options or {}),
                                          "speed": speed}
        session = _derive_session(**changes)
    else:
        session = default_session()
        if speed:
            _set_speed(session, speed)
    print(f"mode: {session.description}" + (
        f"; speed: {session.sandbox.speed}" if session.sandbox is not None else ""))


def _speed_flag(args: list[str]) -> tuple[list[str], str | None, bool]:
    """``args`` without ``--speed X``, X (None: not given), and False if X was refused (the
    reason printed)."""
    from ..speed import check

    words: list[str] = []
    speed: str | None = None
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word == "--speed" or word.startswith("--speed="):
            value = word.partition("=")[2] or (rest.pop(0) if rest else "")
            try:
                speed = check(value)
            except ValueError as error:
                print(f"%openrouter sandbox --speed: {error}")
                return words, None, False
        else:
            words.append(word)
    return words, speed, True


def _set_speed(session: Session, speed: str) -> None:
    """Change the running sandbox's speed and keep it for sessions derived from this one."""
    if session.sandbox is None:
        print("--speed applies to the in-process sandbox; this session is not using it "
              f"(try %openrouter sandbox on --speed {speed}).")
        return
    session.sandbox.speed = speed
    session.config = session.config.derive(
        sandbox_options={**(session.config.sandbox_options or {}), "speed": speed})


def _faults_text() -> str:
    import textwrap

    from ..sandbox.faults import ANSWER_FAULTS, ERROR_FAULTS

    def listing(label: str, names: tuple[str, ...]) -> str:
        return textwrap.fill(", ".join(names), 90, initial_indent=label,
                             subsequent_indent=" " * len(label))

    return "\n".join([
        "Failures the sandbox can stage; the next request gets one:",
        '  orn.get_session().sandbox.queue_fault("NAME")   (count=N for several)',
        listing("errors:  ", ERROR_FAULTS), listing("answers: ", ANSWER_FAULTS),
        "A sandbox server takes them as the request header X-Sandbox-Fault: NAME[,NAME...]"])

def cmd_key(args: list[str]) -> None:
    from IPython.display import display

    from .widgets import KeyEntry

    display(KeyEntry())



def _show_error(error: OpenRouterError) -> None:
    from IPython.display import display

    display(error_bundle(error), raw=True)


def log_frame(session: Session, rows: int = LOG_DEFAULT_ROWS) -> pd.DataFrame:
    """The last ``rows`` attempts, newest first, long text trimmed for display."""
    from .._text import shorten
    from ..ledger import CORE_COLUMNS
    from ..render import terminal_text

    columns = [*CORE_COLUMNS, "error_message"]
    frame = session.ledger.dataframe(limit=rows, newest_first=True, columns=columns)
    for name in ("prompt", "response", "error_message"):
        frame[name] = frame[name].map(  # model text: no terminal escapes, one short line
            lambda value: shorten(terminal_text(value), LOG_TEXT_WIDTH)
            if isinstance(value, str) else value)
    return frame



def cmd_profile(args: list[str]) -> None:
    from .. import config
    from ..session import use_profile

    try:
        if not args:
            profiles = config.load_profiles()
            if not profiles:
                print(f"No profiles: write [profiles.NAME] tables in {config.PROFILE_FILE} "
                      "(see the README).")
            for profile in profiles.values():
                print(profile.describe())
            return
        session = use_profile(args[0])
    except (KeyError, ValueError) as exc:
        print(f"%openrouter profile: {str(exc).strip(chr(34) + chr(39))}")
        return
    print(f"{config.get_profile(args[0]).describe()}\nmode: {session.description}")


def cmd_cost(args: list[str]) -> pd.DataFrame | None:
    """``cost MODEL [--all | --batch ID]``: the logged calls priced at MODEL."""
    if not args or args[0].startswith("-"):
        print("usage: %openrouter cost MODEL [--all | --batch ID]  (a :free id is priced at its "
              "paid twin)")
        return None
    model, rest = args[0], args[1:]
    batch_id = rest[rest.index("--batch") + 1] if "--batch" in rest[:-1] else None
    try:
        estimate = default_session().estimate_cost(model, batch_id=batch_id,
                                                   everything="--all" in rest)
    except KeyError as exc:
        print(f"%openrouter cost: {str(exc).strip(chr(34))}")
        return None
    except OpenRouterError as error:
        _show_error(error)
        return None
    print(estimate.summary())
    return estimate.frame()


def _derive_session(**changes: Any) -> Session:
    """Make a session like the current default, with ``changes``, the default one.

    Every other setting (home, rates, model, options, the budget spent) carries over.
    """
    from ..session import set_session

    session = default_session().derive(**changes)
    old = set_session(session)
    if old is not None and old is not session:
        old.close()
    return session


def cmd_record(args: list[str]) -> None:
    """``record PATH`` saves every exchange to a cassette (no key in it); ``record off``."""
    if not args:
        path = default_session().record_path
        print(f"recording to {path}" if path else "not recording (%openrouter record PATH)")
        return
    if args[0].lower() == "off":
        _derive_session(record=None)
        print("recording stopped")
        return
    session = _derive_session(record=args[0])
    print(f"recording every exchange to {session.record_path} (requests without the key); "
          f"mode: {session.description}")


def cmd_replay(args: list[str]) -> None:
    """``replay PATH [--fallback]`` answers from a cassette with no network; ``replay off``."""
    if not args:
        path = default_session().replay_path
        print(f"replaying {path}" if path else "not replaying (%openrouter replay PATH)")
        return
    if args[0].lower() == "off":
        session = _derive_session(replay=None)
        print(f"replay stopped; mode: {session.description}")
        return
    try:
        session = _derive_session(replay=args[0], replay_fallback="--fallback" in args[1:])
    except FileNotFoundError as exc:
        print(f"%openrouter replay: {exc}")
        return
    fallback = "; unknown requests go to the sandbox" if "--fallback" in args[1:] else (
        "; an unknown request is an error")
    print(f"replaying {session.replay_path}: answers come from the cassette{fallback}")


COMMANDS: dict[str, Callable[[list[str]], Any]] = {
    "budget": cmd_budget,
    "cache": cmd_cache,
    "chats": cmd_chats,
    "class": cmd_class,
    "cost": cmd_cost,
    "help": cmd_help,
    "key": cmd_key,
    "log": cmd_log,
    "models": cmd_models,
    "picker": cmd_picker,
    "profile": cmd_profile,
    "quota": cmd_quota,
    "record": cmd_record,
    "replay": cmd_replay,
    "reset": cmd_reset,
    "sandbox": cmd_sandbox,
    "stats": cmd_stats,
}
