"""One frozen configuration: every session setting and every per-call option, declared once.

``CallOptions`` holds what a single call may change (model, system prompt, max tokens,
reasoning...). ``SessionConfig`` holds a session's connection settings plus its defaults for
calls (``config.call``). A call's options are ``config.resolve(**given)``: the session's
defaults with the given ones replaced, each checked with a short message in our words. A
profile is a partial configuration; a derived session (record, replay, sandbox on/off) is
``dataclasses.replace(config, ...)``, so no code lists the options twice.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "CallOptions",
    "SessionConfig",
    "reasoning_body",
]

DEFAULT_MODEL = "openrouter/free"
#: Reasoning models spend tokens thinking before they answer, and those tokens count against
#: ``max_tokens``. At the usual medium effort a model may think with about half of the cap;
#: 4096 leaves ~2,000 tokens for thinking and as many for the answer. Free models do not
#: charge per token and the free quota counts requests, so a higher cap costs nothing there.
DEFAULT_MAX_TOKENS = 4096
DEFAULT_TIMEOUT_S = 60.0
MAX_MODELS = 3  # OpenRouter rejects longer fallback lists
#: PDF engines of the file-parser plugin, free first (reference §4.3)
PDF_ENGINES = ("cloudflare-ai", "mistral-ocr", "native")

EFFORTS = ("minimal", "low", "medium", "high", "xhigh", "max")
REASONING_WORDS = {"off": {"enabled": False}, "none": {"enabled": False},
                   "on": {"enabled": True}, "hide": {"exclude": True}}
REASONING_KEYS = {"effort", "max_tokens", "exclude", "enabled", "summary"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def reasoning_body(value: Any) -> dict[str, Any] | None:
    """The request's ``reasoning`` object for ``reasoning=``; ``ValueError`` when unusable.

    ``"low" | "medium" | "high"`` (any effort) set the effort, ``"off"`` disables reasoning,
    ``"hide"`` keeps it but leaves it out of the answer, a whole number caps its tokens, and
    a dict is sent as written (keys ``effort``, ``max_tokens``, ``exclude``, ``enabled``).
    """
    if value is None:
        return None
    if value is True:
        return {"enabled": True}
    if value is False:
        return {"enabled": False}
    if isinstance(value, str):
        word = value.strip().lower()
        if word in EFFORTS:
            return {"effort": word}
        if word in REASONING_WORDS:
            return dict(REASONING_WORDS[word])
    elif _is_int(value) and value > 0:
        return {"max_tokens": value}
    elif isinstance(value, Mapping) and value and set(value) <= REASONING_KEYS:
        return dict(value)
    raise ValueError(
        f"reasoning={value!r} is not understood. Use 'low', 'medium' or 'high' (effort), "
        "'off', 'hide' (think but leave the reasoning out), a token cap like 2000, or a dict "
        f"with keys {', '.join(sorted(REASONING_KEYS))}.")


def _check_models(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(m, str) for m in value):
        raise TypeError(f"fallback must be a list of model ids, not {_shown(value)}.")
    return tuple(m.strip() for m in value if m.strip())


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}"


# field -> (accepted types, test on the value, what is expected); None is allowed where the
# default is None. A value of another type is a TypeError, a bad value a ValueError.
_NUMBER = (int, float)
_CHECKS: dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]] = {
    "model": ((str,), lambda v: bool(v.strip()) and "/" in v,
              "a model id like 'vendor/model:free' or 'openrouter/free'"),
    "system": ((str,), lambda v: True, "text"),
    "max_tokens": ((int,), lambda v: v > 0, "a whole number above 0"),
    "temperature": (_NUMBER, lambda v: math.isfinite(v) and 0 <= v <= 2, "a number from 0 to 2"),
    "seed": ((int,), lambda v: True, "a whole number"),
    "retries": ((int,), lambda v: 0 <= v <= 10, "a whole number from 0 to 10"),
    "timeout": (_NUMBER, lambda v: math.isfinite(v) and v > 0, "a number of seconds above 0"),
    "provider": ((Mapping,), lambda v: True, "a dict of provider preferences"),
    "allow_sensitive": ((bool,), lambda v: True, "True or False"),
    "stream": ((bool,), lambda v: True, "True or False"),
    "headers": ((Mapping,), lambda v: all(isinstance(k, str) and isinstance(x, str)
                                          for k, x in v.items()),
                "a dict of header names to text"),
    "history": ((int,), lambda v: v >= 0, "a whole number of turns (0 or more)"),
    "pdf_engine": ((str,), lambda v: v in PDF_ENGINES, "one of " + ", ".join(PDF_ENGINES)),
    "max_side": ((int,), lambda v: v >= 16, "a whole number of pixels (16 or more)"),
    "tool_choice": ((str, Mapping), lambda v: not isinstance(v, str) or bool(v.strip()),
                    "'auto', 'none', 'required', a tool's name or a tool_choice dict"),
    "parallel_tool_calls": ((bool,), lambda v: True, "True or False"),
    "max_steps": ((int,), lambda v: 1 <= v <= 50, "a whole number of model calls from 1 to 50"),
    "go_ahead": ((bool,), lambda v: True, "True or False"),
    "cache": ((bool,), lambda v: True, "True or False"),
}
_NOT_NONE = ("model", "retries", "timeout", "allow_sensitive", "stream", "cache", "max_steps",
             "go_ahead")


@dataclass(frozen=True)
class CallOptions:
    """What one call sends and how it is handled. Every field can be given to ``ask``."""

    model: str = DEFAULT_MODEL
    fallback: tuple[str, ...] = ()
    system: str | None = None
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    temperature: float | None = None
    seed: int | None = None
    reasoning: Any = None  # see reasoning_body()
    schema: Any = None  # a JSON Schema dict or a pydantic class
    retries: int = 2
    timeout: float = DEFAULT_TIMEOUT_S
    provider: Mapping[str, Any] | None = None
    allow_sensitive: bool = False
    stream: bool = False
    headers: Mapping[str, str] | None = None
    history: int | None = None  # conversations: resend at most this many earlier turns
    cache: bool = False  # answer an identical earlier request from the ledger (see cache.py)
    pdf_engine: str | None = None  # attached PDFs: the file-parser engine (None: cloudflare-ai)
    max_side: int | None = None  # attached images: downscale to this longer side (pixels)
    # tool tasks (see agent.py): functions the model may call, and how the loop is bounded
    tools: tuple[Any, ...] | None = None  # tools.Tool values (functions are described)
    tool_choice: Any = None  # "auto", "none", "required", a tool name or a tool_choice dict
    parallel_tool_calls: bool | None = None
    max_steps: int = 5  # model calls one task may make
    go_ahead: bool = False  # send even when today's quota cannot cover max_steps

    def replace(self, **changes: Any) -> CallOptions:
        """These options with ``changes`` checked and applied."""
        for name, value in changes.items():
            changes[name] = check_option(name, value)
        return replace(self, **changes)

    @property
    def chain(self) -> tuple[str, ...]:
        """The model, then its explicit fallbacks."""
        return (self.model.strip(), *self.fallback)

    @property
    def reasoning_request(self) -> dict[str, Any] | None:
        return reasoning_body(self.reasoning)


CALL_FIELDS = tuple(f.name for f in fields(CallOptions))


def check_option(name: str, value: Any) -> Any:
    """``value`` for option ``name``, normalised; ``TypeError``/``ValueError`` in our words."""
    if name not in CALL_FIELDS:
        raise TypeError(unknown_option(name, CALL_FIELDS))
    if name == "fallback":
        return _check_models(value if value is not None else ())
    if name == "reasoning":
        reasoning_body(value)
        return value
    if name == "tools" and value is not None:
        from .tools import as_tools  # described once, when the option is given

        return as_tools(value) or None
    if name == "schema" or (value is None and name not in _NOT_NONE):
        return value
    types, test, expected = _CHECKS[name]
    wrong_type = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
    if wrong_type or not test(value):
        raise (TypeError if wrong_type else ValueError)(
            f"{name} must be {expected}; got {_shown(value)}.")
    return value.strip() if name == "model" else value


def unknown_option(name: str, known: Sequence[str]) -> str:
    """A message for an unknown option, with a "did you mean" when one is close."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown option {name!r}.{hint} Options: {', '.join(sorted(known))}."


@dataclass(frozen=True)
class SessionConfig:
    """Every setting of a session: where it sends, how fast, what it may spend, and its
    defaults for calls. ``api_key`` never appears in the repr."""

    call: CallOptions = field(default_factory=CallOptions)
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    sandbox: bool | None = None
    home: Path | None = None
    budget: int | None = None
    rpm: int | None = None
    rpd: int | None = None
    window_s: float | None = None
    sandbox_options: Mapping[str, Any] | None = None
    profile: str | None = None
    record: Path | None = None
    replay: Path | None = None
    replay_fallback: bool = False
    #: a class: the shared PostgreSQL ledger (else OPENROUTER_NB_LEDGER), who this kernel
    #: records as (else OPENROUTER_NB_PERSON or JUPYTERHUB_USER), and whether calls may go on
    #: pacing alone while that database is down (else OPENROUTER_NB_LEDGER_FALLBACK)
    ledger_url: str | None = field(default=None, repr=False)
    person: str | None = None
    ledger_fallback: bool | None = None

    @classmethod
    def of(cls, **settings: Any) -> SessionConfig:
        """A config from keyword settings, session fields and call defaults mixed."""
        call = {k: settings.pop(k) for k in list(settings) if k in CALL_FIELDS}
        unknown = set(settings) - set(SESSION_FIELDS)
        if unknown:
            name = sorted(unknown)[0]
            raise TypeError(unknown_option(name, SESSION_FIELDS + CALL_FIELDS))
        return cls(call=CallOptions().replace(**call), **_paths(settings))

    def derive(self, **changes: Any) -> SessionConfig:
        """This config with ``changes`` (session fields or call defaults) applied."""
        call = {k: changes.pop(k) for k in list(changes) if k in CALL_FIELDS}
        config = replace(self, **_paths(changes)) if changes else self
        return replace(config, call=config.call.replace(**call)) if call else config

    def resolve(self, **given: Any) -> CallOptions:
        """The options of one call: the session's defaults with ``given`` (not None) applied.

        A call that names its own model does not inherit the session's fallbacks.
        """
        given = {name: value for name, value in given.items() if value is not None}
        if "model" in given and "fallback" not in given:
            given["fallback"] = ()
        if isinstance(given.get("provider"), Mapping) and self.call.provider:
            given["provider"] = {**self.call.provider, **given["provider"]}  # a call adds to them
        return self.call.replace(**given)


SESSION_FIELDS = tuple(f.name for f in fields(SessionConfig) if f.name != "call")


def _paths(settings: dict[str, Any]) -> dict[str, Any]:
    for name in ("home", "record", "replay"):
        value = settings.get(name)
        if value is not None and not isinstance(value, Path):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a path, not {_shown(value)}.")
            settings[name] = Path(value)
    return settings
