"""openrouter_nb: OpenRouter's free models, used deliberately from Jupyter.

``%load_ext openrouter_nb`` for the ``%%openrouter`` magic, or in Python::

    import openrouter_nb as orn
    answer = orn.ask("Explain SSE in one sentence")
    orn.log()

With no ``OPENROUTER_API_KEY`` set, everything runs on the built-in sandbox and says so.
pandas, ipywidgets and IPython are imported only when a DataFrame, widget or magic is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .answer import Answer
from .api.errors import (
    AuthError,
    BadRequestError,
    BudgetExceeded,
    CassetteError,
    ClassBudgetExceeded,
    CreditsError,
    DailyRateLimit,
    HomeFolderError,
    InFlightCredits,
    InvalidOutputError,
    LedgerUnavailable,
    MidStreamError,
    MinuteRateLimit,
    ModelUnavailableError,
    ModerationError,
    NetworkError,
    OpenRouterError,
    ProviderError,
    RateLimitError,
    ReplayMiss,
    RequestTimeout,
    SensitiveInputBlocked,
    TruncatedError,
    UpstreamRateLimit,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    from .agent import TaskRefused
    from .conversation import Conversation
    from .notebook.class_view import ClassView
    from .notebook.widgets import QuotaMeter
    from .session import Session
    from .tools import Tool, tool

# httpx costs ~100 ms to import: the session layer (and with it httpx) loads on first use.
_LAZY = {"Session": "session", "get_session": "session", "set_session": "session",
         "use_profile": "session", "Conversation": "conversation", "Tool": "tools",
         "tool": "tools", "TaskRefused": "agent"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _session() -> Session:
    from .session import get_session

    return get_session()


def ask(prompt: str, model: str | None = None, *, stream: bool = False, **options: Any) -> Answer:
    """Send ``prompt`` to ``model`` (default ``openrouter/free``) and return an ``Answer``.

    Options mirror the magic's flags: ``system``, ``max_tokens``, ``temperature``, ``seed``,
    ``reasoning`` ("low", "medium", "high", "off", "hide" or a token cap), ``schema``,
    ``retries``, ``fallback`` (list of model ids), ``timeout``, ``provider`` (preferences),
    ``allow_sensitive``.
    """
    return _session().ask(prompt, model, stream=stream, **options)


async def aask(prompt: str, model: str | None = None, **options: Any) -> Answer:
    """``ask``, awaited: ``await orn.aask(...)`` in a notebook cell, a script or a web handler.

    The same pipeline, ledger, budget and quota pacer as ``ask`` (run in a bounded thread
    pool, see :mod:`openrouter_nb.aio`), so ``asyncio.gather`` of many calls stays paced.
    """
    return await _session().aask(prompt, model, **options)


async def abatch(df: pd.DataFrame, prompt: str, **options: Any) -> pd.DataFrame:
    """``batch``, awaited (no progress display unless ``progress=`` is given)."""
    options.setdefault("progress", None)
    return await _session().abatch(df, prompt, **options)


def usage(days: int = 1, *, session: Session | None = None) -> Any:
    """Charts of the ledger: today's requests by hour against the daily limit, latency and
    time to first token per model, outcomes by error kind, tokens. Returns a ``Usage``
    (``.figure``, a matplotlib figure shown as a PNG, and ``.frames``, the DataFrames behind
    it). Needs matplotlib (``pip install "openrouter-nb[notebook]"``)."""
    from .charts import usage as _usage

    return _usage(session or _session(), days=days)


def pool_drift(days: int = 7, *, session: Session | None = None) -> Any:
    """Which models the free router (``openrouter/free``) served, day by day, with their
    latency and schema-validity rates: a ``Usage`` with ``.figure`` and ``.frames``."""
    from .charts import pool_drift as _pool_drift

    return _pool_drift(session or _session(), days=days)


def chat(model: str | None = None, *, system: str | None = None, name: str | None = None,
         resume: str | None = None, **options: Any) -> Conversation:
    """A conversation: each ``.ask(text)`` resends the history, so the model remembers.

    ``name`` labels it in the ledger (and for ``%%openrouter --chat NAME``);
    ``resume=NAME`` rebuilds it from the ledger, e.g. after a kernel restart. Options
    (``max_tokens``, ``reasoning``, ``history=N`` to resend only the last N turns...) apply to
    every turn. It follows the default session (``%openrouter sandbox on``, profiles).
    """
    from .conversation import Conversation
    from .session import get_session

    if resume is not None:
        return Conversation.resume(resume, session=get_session, **options)
    return Conversation(model, system=system, name=name, session=get_session, **options)


def log(*, limit: int | None = None, newest_first: bool = False) -> pd.DataFrame:
    """The ledger as a pandas DataFrame: one row per attempt."""
    return _session().log(limit=limit, newest_first=newest_first)


def class_view(session: Session | None = None) -> ClassView:
    """The instructor's view of a class on one key: per participant, live (``.watch()``),
    with the class's usage charts (``.chart()``). Needs ``OPENROUTER_NB_LEDGER``."""
    from .notebook.class_view import ClassView

    return ClassView(session or _session())


def class_budget(requests_per_day: int | None = None, dollars_per_day: float | None = None, *,
                 person: str = "*") -> None:
    """Set the daily budget of ``person`` (``"*"``: everyone without their own); with
    neither limit, remove it. Instructors only; enforced centrally before sending."""
    _session().class_budget(requests_per_day, dollars_per_day, person=person)


def class_budgets() -> pd.DataFrame:
    """The budgets set for the class."""
    return _session().class_budgets()


def quota_meter(session: Session | None = None) -> QuotaMeter:
    """The live quota meter widget: with no ``session``, the one meter that follows the
    default session across switches (sandbox on/off, profiles, record, replay); with one,
    that session's own meter."""
    from .notebook.widgets import quota_meter as _quota_meter

    return _quota_meter(session)


def models(*, free: bool | None = True, vision: bool | None = None, tools: bool | None = None,
           structured: bool | None = None, min_context: int | None = None,
           refresh: bool = False) -> pd.DataFrame:
    """The model catalog as a DataFrame, filtered by capability (free models by default).

    ``refresh=True`` fetches ``/models`` again and reports which free models came and went
    (``openrouter_nb.get_session().catalog.last_diff``).
    """
    catalog = _session().catalog
    if refresh:
        catalog.refresh()
    return catalog.dataframe(free=free, vision=vision, tools=tools, structured=structured,
                             min_context=min_context)


def compare(prompt: str, models: list[str], **options: Any) -> pd.DataFrame:
    """Send the same prompt to each model in parallel; one row per model.

    Columns: ``requested_model, served_model, provider, status, error_kind, latency_s,
    prompt_tokens, completion_tokens, validated, text``.
    """
    from .comparison import compare_frame

    return compare_frame(models, _session().compare(prompt, models, **options))


def batch(df: pd.DataFrame, prompt: str, *, model: str | None = None, out: str = "answer",
          schema: Any = None, progress: Any = "auto", **options: Any) -> pd.DataFrame:
    """One request per row of ``df`` (``prompt`` uses ``{column}`` placeholders), paced by
    the quota and resumable: run the same call again after an interruption and answered
    rows come from the ledger, not from new requests.

    Returns ``df`` with ``out``, ``{out}_model`` and ``{out}_status`` columns (and
    ``{out}_data`` with a ``schema``). ``progress="auto"`` shows a progress bar in a
    notebook and a text line elsewhere; pass ``None`` for none. Several rows are in flight at
    once: on free models as many as the minute window admits (the pacer decides when each
    starts), on paid ones ``concurrency=`` (default 16, halved on a 429 or ``Retry-After``).
    """
    from .batching import text_progress
    from .notebook import notebook_progress

    if progress == "auto":
        progress = notebook_progress() or text_progress()
    return _session().batch(df, prompt, model=model, out=out, schema=schema,
                            progress=progress, **options)


def estimate_cost(model: str, ledger: Any = None, *, batch_id: str | None = None,
                  everything: bool = False) -> Any:
    """Price logged calls at a paid model's catalog prices (a ``:free`` id: its paid twin).

    By default this session's calls; ``ledger=`` a DataFrame of ledger rows (``orn.log()``
    or a slice of it), ``batch_id=`` one batch, ``everything=True`` the whole ledger.
    Returns a ``CostEstimate`` (``.total_usd``, ``.per_1000_calls_usd``, ``.frame()``).
    """
    return _session().estimate_cost(model, rows=ledger, batch_id=batch_id, everything=everything)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext openrouter_nb``: register ``%%openrouter`` and ``%openrouter``."""
    from .notebook.magics import load_ipython_extension as _load

    _load(ipython)


__all__ = [
    "Answer",
    "AuthError",
    "BadRequestError",
    "BudgetExceeded",
    "CassetteError",
    "ClassBudgetExceeded",
    "Conversation",
    "CreditsError",
    "DailyRateLimit",
    "HomeFolderError",
    "InFlightCredits",
    "InvalidOutputError",
    "LedgerUnavailable",
    "MidStreamError",
    "MinuteRateLimit",
    "ModelUnavailableError",
    "ModerationError",
    "NetworkError",
    "OpenRouterError",
    "ProviderError",
    "RateLimitError",
    "ReplayMiss",
    "RequestTimeout",
    "SensitiveInputBlocked",
    "Session",
    "TaskRefused",
    "Tool",
    "TruncatedError",
    "UpstreamRateLimit",
    "__version__",
    "aask",
    "abatch",
    "ask",
    "batch",
    "chat",
    "class_budget",
    "class_budgets",
    "class_view",
    "compare",
    "estimate_cost",
    "get_session",
    "load_ipython_extension",
    "log",
    "models",
    "pool_drift",
    "quota_meter",
    "set_session",
    "tool",
    "usage",
    "use_profile",
]
