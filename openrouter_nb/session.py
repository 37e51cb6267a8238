"""``Session``: one frozen configuration, the client, the ledger and the policies.

A session holds a :class:`~openrouter_nb.options.SessionConfig` (every setting, declared once)
and hands each call down the pipeline (:mod:`openrouter_nb.pipeline`: prepare -> re-asks ->
retry and fallback -> one attempt). ``ask``, ``compare``, conversations and batches are built
on that chain. Nothing is ever substituted silently: a fallback model is only used when the
caller named it, and the answer says so.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import config, pipeline
from .answer import Answer
from .api.client import DEFAULT_BASE_URL, DeltaCallback, OpenRouterClient
from .api.errors import BudgetExceeded, LedgerUnavailable, OpenRouterError
from .api.types import ChatResult, KeyInfo
from .attachments import attachments_of, metadata_json, user_message
from .attempts import AttemptRecorder
from .budget import Budget
from .call import EventCallback
from .catalog import Catalog
from .classroom import open_storage
from .connection import connect
from .ledger import Ledger, new_call_id
from .messages import system as system_message
from .options import DEFAULT_MAX_TOKENS, DEFAULT_MODEL, CallOptions, SessionConfig
from .quota import FREE_RPM, QuotaState, QuotaTracker, is_free_model, utc_midnight_before
from .retry import RetryPolicy
from .store import AttemptStore, file_ledger

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .conversation import Conversation
    from .cost import CostEstimate

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "Session", "get_session", "set_session",
           "shared_ledger", "use_profile"]

SANDBOX_SERVER = pipeline.SANDBOX_SERVER

def shared_ledger(path: Path) -> Ledger:
    """One ``Ledger`` per file per process."""
    return file_ledger(path)


class Session:
    """Explicit configuration for talking to OpenRouter (or the sandbox) from a notebook.

    ``Session()`` with nothing set uses the in-process sandbox; set ``OPENROUTER_API_KEY``
    (or pass ``api_key=``) for the real service. Keyword settings are the fields of
    :class:`~openrouter_nb.options.SessionConfig` (``api_key``, ``base_url``, ``sandbox``,
    ``home``, ``budget``, ``rpm``, ``rpd``, ``window_s``, ``profile``, ``record``, ``replay``,
    ``replay_fallback``, ``sandbox_options``) and the session's defaults for every call
    (:class:`~openrouter_nb.options.CallOptions`: ``model``, ``fallback``, ``system``,
    ``max_tokens``, ``temperature``, ``reasoning``, ``retries``, ``timeout``, ``provider``...).
    ``budget`` caps the requests this session may send. ``record=PATH`` saves every exchange
    to a cassette (without the key); ``replay=PATH`` (or ``OPENROUTER_NB_REPLAY``) answers
    from one with no network, ``replay_fallback=True`` sending unknown requests to the sandbox.
    ``transport``, ``ledger``, ``clock`` and ``sleep`` are injected for tests;
    ``shared_budget`` is how a derived session keeps counting the same budget.
    """

    def __init__(self, *, config: SessionConfig | None = None,
                 transport: httpx.BaseTransport | None = None,
                 ledger: AttemptStore | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 shared_budget: Budget | None = None, **settings: Any) -> None:
        self.config = config.derive(**settings) if config else SessionConfig.of(**settings)
        cfg = self.config
        self.settings = config_settings = _resolve(cfg)
        self.clock, self.sleep = clock, sleep
        self._given_transport = transport
        self._budget = shared_budget if shared_budget is not None else Budget(cfg.budget)
        link = connect(cfg, config_settings, transport, clock)
        self.sandbox, self.mode, self._key = link.sandbox, link.mode, link.key
        self.classroom = open_storage(cfg, config_settings, ledger,  # may refuse: no client yet
                                      in_process_sandbox=link.sandbox is not None)
        self.client = OpenRouterClient(link.key, config_settings.base_url,
                                       transport=link.transport, timeout=cfg.call.timeout)
        self.ledger = self.classroom.ledger
        self.person = self.classroom.person
        self._day_seen = (0.0, 0)  # (since, count) last read from the ledger
        self.account = config_settings.account
        self.session_id = new_call_id()
        self.recorder = AttemptRecorder(self.ledger, session_id=self.session_id,
                                        account=self.account, base_url=config_settings.base_url,
                                        key=self._key, clock=clock, person=self.person)
        rpm, rpd, window_s = link.rates
        window = window_s or 60.0
        self.quota = QuotaTracker(
            rpm=rpm or FREE_RPM, rpd=rpd, window_s=window, clock=clock, sleep=sleep,
            day_count=self._day_count,
            recent_sends=self.ledger.attempt_times(since=clock() - window, account=self.account),
            refresh_key=self.key_info,
        )
        self.quota.note_budget(self._budget.limit, self._budget.used)
        self.quota.shared = self.classroom.gate
        self.quota.shared_fallback = self.classroom.fallback
        if self.sandbox is not None and self.classroom.database is None:
            self._continue_sandbox_day(window)
        self._catalog: Catalog | None = None

    @classmethod
    def from_profile(cls, name: str, *, path: Path | None = None, **overrides: Any) -> Session:
        """A session with the defaults of profile ``name`` (see ``config.load_profiles``).

        Keyword arguments override the profile.
        """
        chosen = config.get_profile(name, path)
        options: dict[str, Any] = {"profile": name}
        for field_name in config.PROFILE_FIELDS:
            value = getattr(chosen, field_name)
            if value is not None and value != ():
                options[field_name] = value
        options.update(overrides)
        return cls(**options)

    def derive(self, **changes: Any) -> Session:
        """A new session like this one with ``changes`` (record, replay, sandbox, profile...).

        It keeps every other setting (home, rates, model, options) and shares this session's
        budget, so what was spent stays spent.
        """
        budget = Budget(changes["budget"]) if "budget" in changes else self._budget
        return Session(config=self.config.derive(**changes),
                       transport=self._given_transport, clock=self.clock, sleep=self.sleep,
                       ledger=None if "home" in changes else self.ledger,
                       shared_budget=budget)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        budget = "" if self.budget is None else f", budget={self.budget_used}/{self.budget}"
        profile = "" if self.profile is None else f", profile={self.profile!r}"
        return f"Session(mode={self.mode!r}, model={self.model!r}{profile}{budget})"

    @property
    def description(self) -> str:
        """One line for the user: which service, and why."""
        return self.settings.reason

    # -- settings, read from the one config ------------------------------------------------------
    @property
    def model(self) -> str:
        """The default model (setting it keeps every other setting)."""
        return self.config.call.model

    @model.setter
    def model(self, value: str) -> None:
        self.config = self.config.derive(model=value)

    fallback = property(lambda self: self.config.call.fallback)
    system = property(lambda self: self.config.call.system)
    temperature = property(lambda self: self.config.call.temperature)
    max_tokens = property(lambda self: self.config.call.max_tokens)
    timeout = property(lambda self: self.config.call.timeout)
    provider = property(lambda self: self.config.call.provider)
    profile = property(lambda self: self.config.profile)
    record_path = property(lambda self: self.config.record)
    retry_policy = property(lambda self: RetryPolicy(retries=self.config.call.retries))

    @property
    def replay_path(self) -> Path | None:
        return self.config.replay if self.mode == "replay" else None

    @property
    def budget(self) -> int | None:
        """At most this many more requests (``None``: no cap)."""
        return self._budget.limit

    @budget.setter
    def budget(self, limit: int | None) -> None:
        self._budget.reset(limit)
        self.config = self.config.derive(budget=limit)
        self.quota.note_budget(limit, 0)

    @property
    def budget_used(self) -> int:
        return self._budget.used

    # -- the call --------------------------------------------------------------------------------
    def ask(self, prompt: str | Sequence[Any], model: str | None = None, *,
            attachments: Any = None, on_delta: DeltaCallback | None = None,
            on_event: EventCallback | None = None, batch_id: str | None = None,
            row_key: str | None = None, **options: Any) -> Answer:
        """Send ``prompt`` and return the whole ``Answer`` (``stream=True`` uses SSE).

        ``options`` are any :class:`~openrouter_nb.options.CallOptions` field: ``system``,
        ``max_tokens``, ``temperature``, ``seed``, ``reasoning`` ("low", "medium", "high",
        "off", "hide" or a token cap), ``schema`` (a JSON Schema dict or pydantic class: the
        answer is validated and the model re-asked at most ``retries`` times), ``retries``,
        ``fallback``, ``timeout``, ``provider``, ``allow_sensitive``, ``headers``, ``stream``.
        Prompts holding keys, e-mail addresses, card numbers and the like are refused before
        anything is sent unless ``allow_sensitive`` is true. ``attachments``: images, PDFs,
        text files or DataFrames sent after the prompt (see :mod:`openrouter_nb.attachments`;
        ``max_side``, ``pdf_engine``); ``prompt`` may also be a list of text and attachments.
        ``tools`` (Python functions) makes the call a bounded tool task (see
        :mod:`openrouter_nb.agent`: ``max_steps``, ``tool_choice``, ``parallel_tool_calls``,
        ``go_ahead``); the answer keeps its ``steps``.
        """
        if not isinstance(prompt, (str, list, tuple)):
            raise TypeError(f"The prompt must be text (a str), not {type(prompt).__name__}.")
        resolved = self.config.resolve(model=model, **options)
        question, attached = user_message(prompt, attachments, max_side=resolved.max_side)
        messages = (*((system_message(resolved.system),) if resolved.system else ()),
                    question)
        call = pipeline.Call(messages, resolved, new_call_id(), batch_id=batch_id,
                             row_key=row_key, attachments=metadata_json(attached),
                             on_delta=on_delta, on_event=on_event)
        return self.run(call)

    async def aask(self, prompt: str, model: str | None = None, **options: Any) -> Answer:
        """``ask``, awaited (the same pipeline in a bounded thread pool; see aio.py)."""
        from .aio import aask

        return await aask(self, prompt, model, **options)

    def run(self, call: pipeline.Call) -> Answer:
        """Send a prepared :class:`~openrouter_nb.pipeline.Call` (conversations use this);
        with ``tools``, as a bounded tool task (:func:`openrouter_nb.agent.run_task`)."""
        if call.options.tools:
            from .agent import run_task

            return run_task(self, call)
        return pipeline.run(self, call)

    def chat(self, model: str | None = None, *, system: str | None = None,
             name: str | None = None, resume: str | None = None,
             **options: Any) -> Conversation:
        """A conversation on this session (see :func:`openrouter_nb.chat`)."""
        from .conversation import Conversation

        if resume is not None:
            return Conversation.resume(resume, session=self, **options)
        return Conversation(model=model, system=system, name=name, session=self, **options)

    def compare(self, prompt: str, models: Sequence[str], *, max_workers: int = 4,
                **options: Any) -> list[Answer | OpenRouterError]:
        """Ask every model the same prompt in parallel (bounded, paced); one result each."""
        if isinstance(models, str) or not all(isinstance(m, str) for m in models):
            raise TypeError(f"models must be a list of model ids, not {models!r:.80}.")
        if not models:
            raise ValueError("compare needs at least one model id.")
        if options.get("attachments") is not None:  # read and checked once, sent to each
            options["attachments"] = attachments_of(
                options["attachments"],
                max_side=options.get("max_side") or self.config.call.max_side)

        def one(model_id: str) -> Answer | OpenRouterError:
            try:
                return self.ask(prompt, model_id, **options)
            except OpenRouterError as error:
                return error

        workers = max(1, min(max_workers, len(models)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orn-compare") as pool:
            return list(pool.map(one, models))

    # -- what the pipeline needs (pipeline.Engine) -------------------------------------------------
    def send(self, body: dict[str, Any], options: CallOptions,
             on_delta: DeltaCallback | None) -> ChatResult:
        """One request through the client."""
        result = self.client.chat(body, timeout=options.timeout, headers=options.headers,
                                  on_delta=on_delta)
        if self.mode == "live" and (result.server or "").startswith(SANDBOX_SERVER):
            self.mode = "sandbox"  # a loopback sandbox server: its answers are simulated too
        return result

    def spend_budget(self, row: dict[str, Any]) -> None:
        """Count one request against the budget, or record a refusal and raise."""
        if not self._budget.spend():
            error = BudgetExceeded(
                f"This session's budget of {self._budget.limit} requests is spent; nothing "
                "was sent. Raise it with %openrouter budget N (or Session(budget=N)).")
            self.recorder.failed(error, row, mode=self.mode, wait_s=0.0)
            raise error
        self.quota.note_budget(self._budget.limit, self._budget.used)

    def record_answer(self, result: ChatResult, row: dict[str, Any], **details: Any) -> None:
        self.recorder.answered(result, row, mode=self.mode, **details)

    def record_failure(self, error: OpenRouterError, row: dict[str, Any], *,
                       wait_s: float = 0.0) -> None:
        self.recorder.failed(error, row, mode=self.mode, wait_s=wait_s)

    def record_cached(self, row: dict[str, Any]) -> None:
        """A ``cached`` row: the call was answered from the ledger (see cache.py)."""
        self.recorder.cached(row, mode=self.mode)

    def record_interrupt(self, row: dict[str, Any], partial: str, started: float) -> None:
        self.recorder.interrupted(row, partial, mode=self.mode,
                                  latency_s=time.perf_counter() - started)

    def day_remaining(self, model: str) -> int | None:
        """Free requests left today, for a free model (``None`` for paid ones)."""
        return self.quota.day_remaining() if is_free_model(model) else None

    @property
    def catalog(self) -> Catalog:
        """The model catalog (``GET /models``, cached in the ledger folder)."""
        if self._catalog is None:
            base_url = self.settings.base_url
            name = "sandbox" if self.settings.sandbox else (
                "openrouter" if base_url == DEFAULT_BASE_URL
                else hashlib.sha256(base_url.encode()).hexdigest()[:8])
            self._catalog = Catalog(self.settings.home / f"models-{name}.json",
                                    self.client.models, clock=self.clock)
        return self._catalog

    def _continue_sandbox_day(self, window: float) -> None:
        """Start the in-process sandbox's quota where the ledger's sandbox rows leave it, so
        a new kernel (or a derived session) continues the day instead of starting at zero:
        footers, the meter and the sandbox's ``/key`` then give the same figures."""
        now = self.clock()
        self.sandbox.quota.seed(
            self._key or "", used_today=self._day_count(utc_midnight_before(now)),
            recent=self.ledger.attempt_times(since=now - window, account=self.account))

    def _day_count(self, since: float) -> int:
        try:
            count = self.ledger.count_attempts(since=since, account=self.account)
        except LedgerUnavailable:  # the class database is away: the last count known
            return self._day_seen[1] if self._day_seen[0] == since else 0
        self._day_seen = (since, count)
        return count

    # -- a class on one key (classroom.py) ---------------------------------------------------------
    def class_frame(self) -> pd.DataFrame:
        """Per participant, today: requests, failures by kind, waiting or blocked, last model,
        share of the class (instructors only)."""
        from .classroom import class_frame

        return class_frame(self.classroom)

    def class_budget(self, requests_per_day: int | None = None,
                     dollars_per_day: float | None = None, *, person: str = "*") -> None:
        """Set (or, with neither, remove) the daily budget of ``person`` ("*": everyone)."""
        from .classroom import set_budget

        set_budget(self.classroom, requests_per_day=requests_per_day,
                   dollars_per_day=dollars_per_day, person=person)

    def class_budgets(self) -> pd.DataFrame:
        """The budgets the instructor set."""
        from .classroom import budgets_frame

        return budgets_frame(self.classroom)

    # -- other views ------------------------------------------------------------------------------
    def key_info(self) -> KeyInfo:
        """``GET /key``; also feeds the quota state."""
        info = self.client.key()
        self.quota.note_key(info)
        return info

    def batch(self, frame: pd.DataFrame, prompt: str, **options: Any) -> pd.DataFrame:
        """One paced request per row; see :func:`openrouter_nb.batching.run_batch`."""
        from .batch_attachments import for_batch
        from .batching import run_batch

        return run_batch(for_batch(self, frame, options), frame, prompt, **options)

    async def abatch(self, frame: pd.DataFrame, prompt: str, **options: Any) -> pd.DataFrame:
        """``batch``, awaited (see aio.py)."""
        from .aio import abatch

        return await abatch(self, frame, prompt, **options)

    def estimate_cost(self, model: str, *, rows: Any = None, batch_id: str | None = None,
                      everything: bool = False) -> CostEstimate:
        """Price this session's logged calls (or a batch's, or all) at ``model``'s prices."""
        from .cost import estimate_cost

        if rows is None:
            if batch_id is not None:
                rows = self.ledger.rows(batch_id=batch_id)
            else:
                rows = self.ledger.rows(session_id=None if everything else self.session_id)
        elif hasattr(rows, "to_dict"):
            rows = rows.to_dict("records")
        return estimate_cost(model, rows, self.catalog)

    def quota_state(self) -> QuotaState:
        return self.quota.state()

    def log(self, *, limit: int | None = None, newest_first: bool = False) -> pd.DataFrame:
        """This account's attempts as a DataFrame (the whole ledger file)."""
        return self.ledger.dataframe(limit=limit, newest_first=newest_first)


def _resolve(cfg: SessionConfig) -> config.Settings:
    return config.resolve(api_key=cfg.api_key, base_url=cfg.base_url, sandbox=cfg.sandbox,
                          home=cfg.home)


# -- the default session behind orn.ask() and the magics ---------------------------------------------
_default: Session | None = None
_default_lock = threading.Lock()
_watchers: list[Callable[[Session | None], None]] = []


def get_session() -> Session:
    """The process-wide default session, made on first use from the environment."""
    global _default
    with _default_lock:
        made = _default is None
        if made:
            _default = Session()
        session: Session = _default  # type: ignore[assignment]  # made just above if None
    if made:
        _tell_watchers(session)
    return session


def watch_default(watcher: Callable[[Session | None], None]) -> Callable[[], None]:
    """Call ``watcher(session)`` whenever the default session changes (``None``: reset, the
    next call makes a new one); returns a function that stops watching. The quota meter
    follows the default session this way."""
    _watchers.append(watcher)
    return lambda: _watchers.remove(watcher) if watcher in _watchers else None


def _tell_watchers(session: Session | None) -> None:
    for watcher in list(_watchers):
        watcher(session)


def use_profile(name: str, *, path: Path | None = None) -> Session:
    """Make a session from profile ``name`` the default one; returns it."""
    session = Session.from_profile(name, path=path)
    old = set_session(session)
    if old is not None:
        old.close()
    return session


def set_session(session: Session | None) -> Session | None:
    """Replace the default session (``None`` resets it to be made again from the environment)."""
    global _default
    with _default_lock:
        old, _default = _default, session
    if session is not old:
        _tell_watchers(session)
    return old
