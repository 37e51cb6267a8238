"""One request per DataFrame row, several in flight, paced by the quota, resumable.

Every finished row is a ledger row tagged with the batch id and a row key (the row's
index and a hash of its prompt). Running the same batch again takes answered rows from
the ledger instead of sending them again, so a batch stopped by the daily limit, a spent
budget or a dead kernel resumes where it stopped.

Rows are sent from a thread pool, each through ``session.ask`` (the one pipeline: budget,
pacing, retries, ledger). How many are in flight:

- free models (``:free``, ``openrouter/free``): up to the per-minute limit (20; at most
  :data:`MAX_FREE_CONCURRENCY` threads). The pacer
  (``QuotaTracker.acquire``) stays the only authority on when a request may start, so the
  batch fills the minute window and never provokes a quota 429;
- paid models: ``concurrency=`` (default :data:`DEFAULT_PAID_CONCURRENCY`, 16), lowered by
  half whenever a 429, an upstream throttle or a ``Retry-After`` comes back and raised by one
  per answered row up to ``concurrency`` again (additive increase, multiplicative decrease).

Near the end of the day's quota or of a budget, no more rows are started than requests are
left (one at a time when none seem left, which is how the daily stop is found as before);
the first daily 429 or spent budget stops the batch: rows already in flight finish and are
logged, rows not started are ``not_sent``. An interrupt (Ctrl-C) starts nothing more, waits
for the rows in flight (each is logged) and then raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._text import interpolate, placeholders
from .api.errors import BudgetExceeded, DailyRateLimit, OpenRouterError
from .quota import is_free_model
from .validate import SchemaSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .answer import Answer
    from .quota import QuotaState
    from .store import AttemptStore


class Session(Protocol):
    """What a batch needs of a session (``openrouter_nb.session.Session`` has it)."""

    model: str
    ledger: AttemptStore

    def ask(self, prompt: str, model: str | None = None, **options: Any) -> Answer: ...

    def quota_state(self) -> QuotaState: ...

NOT_SENT = "not_sent"
#: Requests in flight on a paid route unless ``concurrency=`` says otherwise: enough to hide
#: a 1 s latency behind 16 requests a second, well under what OpenRouter's paid limits allow
#: (they scale with the credits held; a 429 or 402 in-flight answer lowers it at once).
DEFAULT_PAID_CONCURRENCY = 16
#: Error kinds that mean "too many at once": the batch halves how many it keeps in flight.
#: Free models: as many in flight as the minute window admits, but no more threads than this
#: (a sandbox or a test may allow 1,000 a minute).
MAX_FREE_CONCURRENCY = 32
BACK_OFF_KINDS = frozenset({"rate_limit_minute", "rate_limit", "upstream_rate_limit", "credits"})


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands; handed to the progress callback after every row."""

    batch_id: str
    done: int  # rows with an outcome (answered, resumed or failed)
    total: int
    resumed: int
    failed: int
    day_remaining: int | None
    eta_s: float | None
    message: str = ""
    finished: bool = False
    in_flight: int = 0  # rows sent and not yet answered

    @property
    def answered(self) -> int:
        return self.done - self.failed

    @property
    def not_sent(self) -> int:
        return max(0, self.total - self.done - self.in_flight)


ProgressCallback = Callable[[BatchProgress], None]


def batch_id_for(prompt: str, model: str, out: str, schema: SchemaSpec | None,
                 system: str | None) -> str:
    """Same template, model, output column, schema and system prompt: same batch."""
    key = json.dumps([prompt, model, out, schema.schema if schema else None, system],
                     sort_keys=True, default=str)
    return "b-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Limiter:
    """How many rows may be in flight: halved on a 429 or ``Retry-After``, +1 per answer."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.current = self.maximum
        self.backoffs = 0
        self._lock = threading.Lock()

    def back_off(self) -> None:
        with self._lock:
            self.current = max(1, self.current // 2)
            self.backoffs += 1

    def answered(self) -> None:
        with self._lock:
            self.current = min(self.maximum, self.current + 1)

    def on_event(self, name: str, details: dict[str, Any]) -> None:
        """A pipeline event (``on_event``): a retried 429 or ``Retry-After`` backs off."""
        error = details.get("error")
        if name == "retry" and isinstance(error, OpenRouterError) and _crowded(error):
            self.back_off()


def _crowded(error: OpenRouterError) -> bool:
    return error.kind in BACK_OFF_KINDS or getattr(error, "retry_after_s", None) is not None


@dataclass
class _Job:
    position: int
    place: Any
    text: str
    key: str


@dataclass
class _Tally:
    total: int
    resumed: int = 0
    failed: int = 0
    completed: int = 0  # rows sent and finished in this run
    stop: str = ""


def _result_frame(frame: pd.DataFrame, out: str, spec: SchemaSpec | None) -> pd.DataFrame:
    """A copy of ``frame`` with the answer columns added, every row not sent yet."""
    result = frame.copy()
    result[out] = None
    result[f"{out}_model"] = None
    result[f"{out}_status"] = NOT_SENT
    if spec is not None:
        result[f"{out}_data"] = None
    return result


def run_batch(session: Session, frame: pd.DataFrame, prompt: str, *, model: str | None = None,
              out: str = "answer", schema: Any = None, batch_id: str | None = None,
              progress: ProgressCallback | None = None, concurrency: int | None = None,
              **options: Any) -> pd.DataFrame:
    """Answer ``prompt`` (with ``{column}`` placeholders) for every row of ``frame``.

    Returns a copy of ``frame`` with the columns ``out`` (the answer text),
    ``{out}_model`` (the model that answered) and ``{out}_status`` (``ok``, an error kind,
    or ``not_sent``), plus ``{out}_data`` when a ``schema`` is given. Rows keep their order
    whatever order their answers arrive in. ``concurrency`` caps the requests in flight
    (default: the per-minute limit on free models, 16 on paid ones; 1 sends one at a time).
    """
    columns = _check(frame, prompt, out, concurrency)
    spec = SchemaSpec.of(schema) if schema is not None else None
    chosen = model or session.model
    bid = batch_id or batch_id_for(prompt, chosen, out, spec, options.get("system"))
    answered = session.ledger.batch_answers(bid)
    result = _result_frame(frame, out, spec)
    tally, jobs = _Tally(len(frame)), []
    identify = getattr(session, "row_identity", None)
    for position, (index, row) in enumerate(frame.iterrows()):
        text = interpolate(prompt, {c: row[c] for c in columns})
        sent = text + (identify(index) if identify is not None else "")  # with its attachment
        key = f"{index}:{hashlib.sha256(sent.encode()).hexdigest()[:12]}"
        place = result.index[position]
        if key in answered:
            logged = answered[key]
            _fill(result, place, out, logged["response"], logged["served_model"], spec)
            tally.resumed += 1
        else:
            jobs.append(_Job(position, place, text, key))
    if concurrency is None:
        concurrency = (min(session.quota_state().minute_limit, MAX_FREE_CONCURRENCY)
                       if is_free_model(chosen) else DEFAULT_PAID_CONCURRENCY)
    limiter = Limiter(concurrency)
    caller_event = options.pop("on_event", None)

    def on_event(name: str, details: dict[str, Any]) -> None:
        limiter.on_event(name, details)
        if caller_event is not None:
            caller_event(name, details)

    def send(job: _Job) -> Answer:
        return session.ask(job.text, chosen, batch_id=bid, row_key=job.key, schema=spec,
                           on_event=on_event, **options)

    report = _reporter(session, bid, tally, progress)
    if tally.resumed and jobs and progress is not None:
        report(0)
    _run_jobs(session, chosen, jobs, send, limiter, tally, report, result, out, spec)
    if not jobs:
        report(0, final=True)
    result.attrs["openrouter_batch"] = {"batch_id": bid, "resumed": tally.resumed,
                                        "failed": tally.failed, "message": tally.stop,
                                        "concurrency": limiter.maximum,
                                        "backoffs": limiter.backoffs}
    return result


def _check(frame: Any, prompt: Any, out: Any, concurrency: Any) -> list[str]:
    if not hasattr(frame, "iterrows") or not hasattr(frame, "columns"):
        raise TypeError(f"batch needs a pandas DataFrame, not {type(frame).__name__}.")
    if not isinstance(prompt, str) or not prompt.strip():
        raise TypeError("batch needs a prompt template (text with {column} placeholders), "
                        f"not {prompt!r:.60}.")
    if not isinstance(out, str) or not out:
        raise TypeError(f"out must be a column name (text), not {out!r:.60}.")
    if concurrency is not None and (not isinstance(concurrency, int)
                                    or isinstance(concurrency, bool) or concurrency < 1):
        raise ValueError(f"concurrency must be a whole number of requests (1 or more), "
                         f"not {concurrency!r:.60}.")
    columns = [c for c in frame.columns if isinstance(c, str)]
    unknown = [name for name in placeholders(prompt) if name not in columns]
    if unknown:
        raise ValueError(f"The prompt uses {', '.join('{' + n + '}' for n in unknown)}, which "
                         f"{'is not a column' if len(unknown) == 1 else 'are not columns'}; "
                         f"columns: {', '.join(columns)}.")
    return columns


def _may_start(session: Session, model: str, in_flight: int, limiter: Limiter) -> bool:
    """Another row may start: under the limiter, and not more than the day or budget allow."""
    if in_flight == 0:
        return True  # one at a time always: how a daily stop or a spent budget shows itself
    if in_flight >= limiter.current:
        return False
    state = session.quota_state()
    budget = state.budget_remaining
    if budget is not None and budget - in_flight <= 0:
        return False
    return not (is_free_model(model) and state.day_remaining - in_flight <= 0)


def _run_jobs(session: Session, model: str, jobs: list[_Job], send: Callable[[_Job], Answer],
              limiter: Limiter, tally: _Tally, report: Callable[..., None],
              result: pd.DataFrame, out: str, spec: SchemaSpec | None) -> None:
    if not jobs:
        return
    waiting = list(reversed(jobs))
    running: dict[Future[Answer], _Job] = {}
    with ThreadPoolExecutor(max_workers=limiter.maximum, thread_name_prefix="orn-batch") as pool:
        try:
            while running or (waiting and not tally.stop):
                while waiting and not tally.stop and _may_start(session, model, len(running),
                                                                 limiter):
                    job = waiting.pop()
                    running[pool.submit(send, job)] = job
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    _outcome(future, job, tally, limiter, result, out, spec)
                    report(len(running), final=not running and (not waiting or bool(tally.stop)))
        except KeyboardInterrupt:
            tally.stop = "Interrupted: rows in flight were allowed to finish and are logged."
            wait(running)  # each in-flight row writes its own ledger row
            raise


def _outcome(future: Future[Answer], job: _Job, tally: _Tally, limiter: Limiter,
             result: pd.DataFrame, out: str, spec: SchemaSpec | None) -> None:
    tally.completed += 1
    try:
        answer = future.result()
    except (DailyRateLimit, BudgetExceeded) as error:
        result.loc[job.place, f"{out}_status"] = error.kind
        tally.failed += 1
        if not tally.stop:
            tally.stop = (f"Stopped at row {job.position + 1} of {tally.total}: {error.message} "
                          "Run the same call again to resume; answered rows are kept.")
    except OpenRouterError as error:
        result.loc[job.place, f"{out}_status"] = error.kind
        tally.failed += 1
        if _crowded(error):
            limiter.back_off()
    else:
        _fill(result, job.place, out, answer.text, answer.model, spec)
        limiter.answered()


def _reporter(session: Session, bid: str, tally: _Tally,
              progress: ProgressCallback | None) -> Callable[..., None]:
    started = time.monotonic()

    def report(in_flight: int, *, final: bool = False) -> None:
        if progress is None:
            return
        done = tally.resumed + tally.completed
        elapsed = time.monotonic() - started
        left = tally.total - done
        eta = (elapsed / tally.completed * left if tally.completed and not tally.stop
               else None)
        progress(BatchProgress(bid, done, tally.total, tally.resumed, tally.failed,
                               session.quota_state().day_remaining, eta, tally.stop,
                               finished=final or done == tally.total, in_flight=in_flight))

    return report


def _fill(result: pd.DataFrame, place: Any, out: str, text: str | None, model: str | None,
          spec: SchemaSpec | None) -> None:
    result.at[place, out] = text
    result.at[place, f"{out}_model"] = model
    result.at[place, f"{out}_status"] = "ok"
    if spec is not None and text is not None:
        check = spec.check(text)
        result.at[place, f"{out}_data"] = check.data if check.ok else None


def text_progress(stream: Any = None) -> ProgressCallback:
    """A one-line, carriage-return progress report for terminals and scripts:
    ``rows 12/60 · 9 answered · 1 failed · 20 in flight · 28 not sent · 38 left today · ETA 0:41``."""
    import sys

    out = stream or sys.stderr
    said: list[str] = []

    def report(state: BatchProgress) -> None:
        parts = [f"rows {state.done}/{state.total}"]
        if state.resumed:
            parts[0] += f" ({state.resumed} from the ledger)"
        parts.append(f"{state.answered} answered")
        if state.failed:
            parts.append(f"{state.failed} failed")
        if state.in_flight:
            parts.append(f"{state.in_flight} in flight")
        if state.not_sent:
            parts.append(f"{state.not_sent} not sent")
        if state.day_remaining is not None:
            parts.append(f"{state.day_remaining} left today")
        if state.eta_s is not None and not state.finished:
            parts.append(f"ETA {int(state.eta_s) // 60}:{int(state.eta_s) % 60:02d}")
        out.write("\r" + " · ".join(parts) + "   ")
        if state.message and state.message not in said:
            said.append(state.message)
            out.write("\n" + state.message + "\n")
        elif state.finished:
            out.write("\n")
        out.flush()

    return report
