"""``Session``: client, ledger and policies tied together. ``ask`` lives here.

A call is one or more attempts. Before each attempt the session checks the budget and
waits for a per-minute slot; after it, it writes one ledger row and asks the retry policy
what to do next. Nothing is ever substituted silently: a fallback model is only used when
the caller named it, and the answer says so.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from . import config, privacy
from .answer import Answer
from .api.client import DEFAULT_BASE_URL, DeltaCallback, OpenRouterClient
from .api.errors import (
    BadRequestError,
    BudgetExceeded,
    DailyRateLimit,
    InvalidOutputError,
    ModelUnavailableError,
    OpenRouterError,
    SensitiveInputBlocked,
)
from .api.types import ChatResult, KeyInfo
from .attempts import AttemptRecorder
from .catalog import FREE_ROUTER, Catalog
from .ledger import Ledger, new_call_id
from .quota import FREE_RPM, QuotaState, QuotaTracker, Slot, is_free_model
from .request import build_body, build_messages, build_options
from .retry import RetryPolicy
from .validate import SchemaSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .cost import CostEstimate

DEFAULT_MODEL = "openrouter/free"
DEFAULT_MAX_TOKENS = 800  # short answers by default: free quotas are small, demos are public
DEFAULT_TIMEOUT_S = 60.0
MAX_MODELS = 3  # OpenRouter rejects longer fallback lists
SANDBOX_SERVER = "openrouter-nb-sandbox"  # the Server header of `python -m openrouter_nb.sandbox`

#: Event callback ``on_event(name, details)``; names: "waited", "retry", "fallback", "reask".
EventCallback = Callable[[str, dict[str, Any]], None]

_ledgers: dict[Path, Ledger] = {}
_ledgers_lock = threading.Lock()


def shared_ledger(path: Path) -> Ledger:
    """One ``Ledger`` per file per process."""
    path = path.expanduser().resolve()
    with _ledgers_lock:
        if path not in _ledgers:
            _ledgers[path] = Ledger(path)
        return _ledgers[path]


class Session:
    """Explicit configuration for talking to OpenRouter (or the sandbox) from a notebook.

    ``Session()`` with nothing set uses the in-process sandbox; set ``OPENROUTER_API_KEY``
    (or pass ``api_key=``) for the real service. ``budget`` caps the requests this session
    may send; ``retries`` bounds extra attempts per call. ``record=PATH`` saves every exchange
    to a cassette (without the key); ``replay=PATH`` (or ``OPENROUTER_NB_REPLAY``) answers
    from one with no network, ``replay_fallback=True`` sending unknown requests to the sandbox.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        sandbox: bool | None = None,
        home: str | Path | None = None,
        model: str = DEFAULT_MODEL,
        budget: int | None = None,
        retries: int = 2,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        provider: Mapping[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rpm: int | None = None,
        rpd: int | None = None,
        window_s: float | None = None,
        sandbox_options: Mapping[str, Any] | None = None,
        fallback: Sequence[str] = (),
        system: str | None = None,
        temperature: float | None = None,
        profile: str | None = None,
        record: str | Path | None = None,
        replay: str | Path | None = None,
        replay_fallback: bool = False,
    ) -> None:
        self.settings = config.resolve(api_key=api_key, base_url=base_url, sandbox=sandbox,
                                       home=home)
        self.model = model
        self.fallback = tuple(fallback)
        self.system = system
        self.temperature = temperature
        self.profile = profile
        self.budget = budget
        self.budget_used = 0
        self.retry_policy = RetryPolicy(retries=retries)
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.provider = dict(provider) if provider else None
        self.clock = clock
        self.sleep = sleep
        self.sandbox: Any = None
        key = self.settings.api_key
        options = dict(sandbox_options or {})
        replay = replay if replay is not None else (os.environ.get("OPENROUTER_NB_REPLAY") or None)
        wants_sandbox = self.settings.sandbox and transport is None
        if wants_sandbox and (not replay or replay_fallback):
            from .sandbox import Sandbox, SandboxTransport, sandbox_key

            options.setdefault("clock", clock)
            self.sandbox = Sandbox(**options)
            transport = SandboxTransport(self.sandbox)
            key = sandbox_key()
            rpm = rpm or options.get("rpm")
            rpd = rpd or options.get("rpd")
            window_s = window_s or options.get("window_s")
        self.mode = "sandbox" if self.settings.sandbox else "live"
        if replay:
            from .api.cassette import ReplayTransport

            transport = ReplayTransport(replay, fallback=transport if replay_fallback else None)
            self.mode = "replay"
        if record:
            from .api.cassette import RecordingTransport

            transport = RecordingTransport(transport or httpx.HTTPTransport(), record)
        self.record_path = Path(record) if record else None
        self.replay_path = Path(replay) if replay else None
        self._key = key
        self.client = OpenRouterClient(key, self.settings.base_url, transport=transport,
                                       timeout=timeout)
        self.ledger = ledger or shared_ledger(self.settings.home / "ledger.sqlite")
        self.account = self.settings.account
        self.session_id = new_call_id()
        self.recorder = AttemptRecorder(self.ledger, session_id=self.session_id,
                                        account=self.account, base_url=self.settings.base_url,
                                        key=self._key, clock=clock)
        window = window_s or 60.0
        self.quota = QuotaTracker(
            rpm=rpm or FREE_RPM, rpd=rpd, window_s=window, clock=clock, sleep=sleep,
            day_count=self._day_count,
            recent_sends=self.ledger.attempt_times(since=clock() - window, account=self.account),
        )
        self._budget_lock = threading.Lock()
        self._catalog: Catalog | None = None

    @classmethod
    def from_profile(cls, name: str, *, path: Path | None = None, **overrides: Any) -> Session:
        """A session with the defaults of profile ``name`` (see ``config.load_profiles``).

        Keyword arguments override the profile.
        """
        chosen = config.get_profile(name, path)
        options: dict[str, Any] = {"profile": name}
        for field in config.PROFILE_FIELDS:
            value = getattr(chosen, field)
            if value is not None and value != ():
                options[field] = value
        options.update(overrides)
        return cls(**options)

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

    # -- the call --------------------------------------------------------------------------------
    def ask(
        self,
        prompt: str,
        model: str | None = None,
        *,
        stream: bool = False,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        schema: Any = None,
        retries: int | None = None,
        fallback: Sequence[str] | None = None,
        timeout: float | None = None,
        provider: Mapping[str, Any] | None = None,
        allow_sensitive: bool = False,
        headers: Mapping[str, str] | None = None,
        on_delta: DeltaCallback | None = None,
        on_event: EventCallback | None = None,
        batch_id: str | None = None,
        row_key: str | None = None,
    ) -> Answer:
        """Send ``prompt`` and return the whole ``Answer`` (streaming uses SSE underneath).

        With ``schema`` (a JSON Schema dict or a pydantic class) the answer is validated and
        the model re-asked with the validation error, at most ``retries`` times. Prompts
        holding keys, e-mail addresses, card numbers and the like are refused before
        anything is sent unless ``allow_sensitive`` is true.
        """
        call_id = new_call_id()
        requested = (model or self.model).strip()
        if fallback is None and model is None:
            fallback = self.fallback  # the profile's fallbacks go with the profile's model
        system = self.system if system is None else system
        temperature = self.temperature if temperature is None else temperature
        chain = [requested] + [m.strip() for m in (fallback or []) if m and m.strip()]
        common = dict(call_id=call_id, requested_model=requested, prompt=prompt,
                      batch_id=batch_id, row_key=row_key, stream=stream)
        if not isinstance(prompt, str) or not prompt.strip():
            self._refuse(BadRequestError("The prompt is empty. Write something in the cell (or "
                                         "pass a non-empty string)."), common)
        if len(chain) > MAX_MODELS:
            self._refuse(BadRequestError(
                f"At most {MAX_MODELS} models per call (the model plus {MAX_MODELS - 1} "
                f"fallbacks); got {len(chain)}."), common)
        if not allow_sensitive:
            self._guard(prompt, system, common)
        spec = self._schema_spec(schema, common)
        messages = build_messages(prompt, system)
        options = build_options(
            max_tokens=max_tokens if max_tokens is not None else self.max_tokens,
            temperature=temperature, seed=seed, stream=stream,
            provider={**(self.provider or {}), **(provider or {})})
        policy = self.retry_policy if retries is None else RetryPolicy(retries=retries)
        attempt, retries_used, reasks, index = 0, 0, 0, 0
        while True:
            attempt += 1
            current = chain[index]
            row = dict(common, attempt=attempt, requested_model=current,
                       fallback=current if index else None)
            self._spend_budget(row)
            try:
                # Replayed answers send nothing: no pacing, no quota.
                slot = Slot(None, 0.0) if self.mode == "replay" else self.quota.acquire(current)
            except DailyRateLimit as error:
                self.recorder.failed(error, row, mode=self.mode, wait_s=0.0)
                self._finish_error(error, call_id, attempt)
            waited = slot.waited
            if waited and on_event:
                on_event("waited", {"seconds": waited, "model": current})
            body = build_body(current, messages, options, spec,
                              structured=spec is not None and self._supports_structured(current))
            try:
                result = self.client.chat(body, timeout=timeout, headers=headers,
                                          on_delta=on_delta)
            except OpenRouterError as error:
                decision = policy.decide(error, retries_used=retries_used,
                                         has_fallback=index + 1 < len(chain), now=self.clock())
                if decision.action == "stop" and isinstance(error, ModelUnavailableError) \
                        and len(chain) == 1 and error.reason not in ("data_policy",
                                                                     "provider_preferences"):
                    # (the catalog cannot tell which models a data policy or preferences allow)
                    self._suggest_alternatives(error, current)
                self.recorder.failed(error, row, mode=self.mode, wait_s=waited)
                self.quota.settle(slot)
                self.quota.note_error(error)
                if decision.action == "stop":
                    self._finish_error(error, call_id, attempt)
                if on_event:
                    on_event(decision.action, {"error": error, "wait_s": decision.wait_s,
                                               "reason": decision.reason, "attempt": attempt})
                if decision.action == "fallback":
                    index += 1
                else:
                    retries_used += 1
                    if decision.wait_s > 0:
                        self.sleep(decision.wait_s)
                continue
            simulated = (result.server or "").startswith(SANDBOX_SERVER)
            if simulated and self.mode == "live":
                self.mode = "sandbox"  # a loopback sandbox server: its answers are simulated too
            check = spec.check(result.text) if spec is not None else None
            failure = None
            if check is not None and not check.ok and reasks >= policy.retries:
                failure = self._invalid_output(result, check.error or "", reasks, current)
            self.recorder.answered(result, row, mode=self.mode, wait_s=waited,
                            validated=check.ok if check else None,
                            validation_error=check.error if check else None, failure=failure)
            self.quota.settle(slot)
            self.quota.note_result(result.model)
            if failure is not None:
                self._finish_error(failure, call_id, attempt)
            if check is not None and not check.ok:
                reasks += 1
                messages = messages + [
                    {"role": "assistant", "content": result.text},
                    {"role": "user", "content": f"That reply was not valid: {check.error}. "
                                                "Reply again with only the corrected JSON."},
                ]
                if on_event:
                    on_event("reask", {"error": check.error, "attempt": attempt})
                continue
            answer = self._answer(result, requested, chain[index] if index else None, call_id,
                                  attempt)
            answer.sandbox = answer.sandbox or simulated
            if check is not None:
                answer.validated, answer.data = True, check.data
            return answer

    def compare(self, prompt: str, models: Sequence[str], *, max_workers: int = 4,
                **options: Any) -> list[Answer | OpenRouterError]:
        """Ask every model the same prompt in parallel (bounded, paced); one result each."""
        if not models:
            raise ValueError("compare needs at least one model id.")

        def one(model_id: str) -> Answer | OpenRouterError:
            try:
                return self.ask(prompt, model_id, **options)
            except OpenRouterError as error:
                return error

        workers = max(1, min(max_workers, len(models)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orn-compare") as pool:
            return list(pool.map(one, models))

    # -- building blocks ---------------------------------------------------------------------------
    def _guard(self, prompt: str, system: str | None, common: dict[str, Any]) -> None:
        findings = privacy.scan(prompt) + (privacy.scan(system) if system else [])
        if findings:
            # The ledger keeps that something was blocked, never the sensitive text itself.
            self._refuse(SensitiveInputBlocked(privacy.describe(findings)),
                         dict(common, prompt=None))

    def _schema_spec(self, schema: Any, common: dict[str, Any]) -> SchemaSpec | None:
        if schema is None:
            return None
        try:
            return SchemaSpec.of(schema)
        except Exception as exc:  # jsonschema.SchemaError, TypeError, ImportError
            self._refuse(BadRequestError(f"The schema cannot be used: {str(exc)[:200]}"), common)

    def _supports_structured(self, model: str) -> bool:
        if model == FREE_ROUTER:
            return True  # the router itself picks a model that supports the request
        try:
            info = self.catalog.get(model)
        except OpenRouterError:
            return False
        return bool(info and info.structured)

    def _suggest_alternatives(self, error: OpenRouterError, model: str) -> None:
        try:
            alternatives = self.catalog.alternatives(model)
        except OpenRouterError:
            return
        if alternatives:
            error.message += " Free alternatives: " + ", ".join(m.id for m in alternatives) + "."

    @property
    def catalog(self) -> Catalog:
        """The model catalog (``GET /models``, cached in the ledger folder)."""
        if self._catalog is None:
            name = "sandbox" if self.settings.sandbox else (
                "openrouter" if self.settings.base_url == DEFAULT_BASE_URL
                else hashlib.sha256(self.settings.base_url.encode()).hexdigest()[:8])
            self._catalog = Catalog(self.settings.home / f"models-{name}.json",
                                    self.client.models, clock=self.clock)
        return self._catalog

    def _spend_budget(self, row: dict[str, Any]) -> None:
        with self._budget_lock:
            if self.budget is not None and self.budget_used >= self.budget:
                error = BudgetExceeded(
                    f"This session's budget of {self.budget} requests is spent; nothing was sent. "
                    "Raise it with %openrouter budget N (or Session(budget=N)).")
                self.recorder.failed(error, row, mode=self.mode, wait_s=0.0)
                self._finish_error(error, row["call_id"], row["attempt"])
            self.budget_used += 1
        self.quota.note_budget(self.budget, self.budget_used)

    def _refuse(self, error: OpenRouterError, common: dict[str, Any]) -> NoReturn:
        self.recorder.failed(error, dict(common, attempt=1), mode=self.mode, wait_s=0.0)
        self._finish_error(error, common["call_id"], 0)

    def _finish_error(self, error: OpenRouterError, call_id: str, attempts: int) -> NoReturn:
        error.call_id = call_id
        error.attempts = attempts
        raise error

    def _invalid_output(self, result: ChatResult, error: str, reasks: int,
                        model: str) -> InvalidOutputError:
        advice = ("the model supports structured outputs but broke them: retry with more "
                  "--retries, pick a more reliable model, or loosen the schema"
                  if self._supports_structured(model) else
                  "pick a model with structured outputs (%openrouter models --structured) or "
                  "loosen the schema")
        failure = InvalidOutputError(
            f"The answer did not match the schema after {reasks + 1} "
            f"{'try' if reasks == 0 else 'tries'}: {error}. Next: {advice}.",
            http_status=200, model=result.model, provider=result.provider)
        failure.partial_text = result.text
        return failure

    def _answer(self, result: ChatResult, requested: str, fallback: str | None, call_id: str,
                attempts: int) -> Answer:
        usage = result.usage.as_dict() if result.usage else {}
        day_remaining = None
        if is_free_model(fallback or requested):
            day_remaining = self.quota.state().day_remaining
        return Answer(
            text=result.text, model=result.model, requested_model=requested,
            provider=result.provider, usage=usage, latency_s=result.latency_s,
            ttft_s=result.ttft_s, call_id=call_id, attempts=attempts,
            sandbox=self.mode == "sandbox", generation_id=result.generation_id,
            finish_reason=result.finish_reason, fallback=result.model if fallback else None,
            day_remaining=day_remaining, mode=self.mode,
        )

    def _day_count(self, since: float) -> int:
        return self.ledger.count_attempts(since=since, account=self.account)

    # -- other views ------------------------------------------------------------------------------
    def key_info(self) -> KeyInfo:
        """``GET /key``; also feeds the quota state."""
        info = self.client.key()
        self.quota.note_key(info)
        return info

    def batch(self, frame: pd.DataFrame, prompt: str, **options: Any) -> pd.DataFrame:
        """One paced request per row; see :func:`openrouter_nb.batching.run_batch`."""
        from .batching import run_batch

        return run_batch(self, frame, prompt, **options)

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


# -- the default session behind orn.ask() and the magics ---------------------------------------------
_default: Session | None = None
_default_lock = threading.Lock()


def get_session() -> Session:
    """The process-wide default session, made on first use from the environment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Session()
        return _default


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
    return old
