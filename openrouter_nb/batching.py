"""One request per DataFrame row, paced by the quota, resumable from the ledger.

Every finished row is a ledger row tagged with the batch id and a row key (the row's
index and a hash of its prompt). Running the same batch again takes answered rows from
the ledger instead of sending them again, so a batch stopped by the daily limit, a spent
budget or a dead kernel resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._text import interpolate, placeholders
from .api.errors import BudgetExceeded, DailyRateLimit, OpenRouterError
from .validate import SchemaSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .answer import Answer
    from .ledger import Ledger
    from .quota import QuotaState


class Session(Protocol):
    """What a batch needs of a session (``openrouter_nb.session.Session`` has it)."""

    model: str
    ledger: Ledger

    def ask(self, prompt: str, model: str | None = None, **options: Any) -> Answer: ...

    def quota_state(self) -> QuotaState: ...

NOT_SENT = "not_sent"


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


ProgressCallback = Callable[[BatchProgress], None]


def batch_id_for(prompt: str, model: str, out: str, schema: SchemaSpec | None,
                 system: str | None) -> str:
    """Same template, model, output column, schema and system prompt: same batch."""
    key = json.dumps([prompt, model, out, schema.schema if schema else None, system],
                     sort_keys=True, default=str)
    return "b-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def run_batch(session: Session, frame: pd.DataFrame, prompt: str, *, model: str | None = None,
              out: str = "answer", schema: Any = None, batch_id: str | None = None,
              progress: ProgressCallback | None = None, **options: Any) -> pd.DataFrame:
    """Answer ``prompt`` (with ``{column}`` placeholders) for every row of ``frame``.

    Returns a copy of ``frame`` with the columns ``out`` (the answer text),
    ``{out}_model`` (the model that answered) and ``{out}_status`` (``ok``, an error kind,
    or ``not_sent``), plus ``{out}_data`` when a ``schema`` is given.
    """
    if not hasattr(frame, "iterrows") or not hasattr(frame, "columns"):
        raise TypeError(f"batch needs a pandas DataFrame, not {type(frame).__name__}.")
    if not isinstance(prompt, str) or not prompt.strip():
        raise TypeError("batch needs a prompt template (text with {column} placeholders), "
                        f"not {prompt!r:.60}.")
    if not isinstance(out, str) or not out:
        raise TypeError(f"out must be a column name (text), not {out!r:.60}.")
    columns = [c for c in frame.columns if isinstance(c, str)]
    unknown = [name for name in placeholders(prompt) if name not in columns]
    if unknown:
        raise ValueError(f"The prompt uses {', '.join('{' + n + '}' for n in unknown)}, which "
                         f"{'is not a column' if len(unknown) == 1 else 'are not columns'}; "
                         f"columns: {', '.join(columns)}.")
    spec = SchemaSpec.of(schema) if schema is not None else None
    chosen = model or session.model
    bid = batch_id or batch_id_for(prompt, chosen, out, spec, options.get("system"))
    answered = session.ledger.batch_answers(bid)
    result = frame.copy()
    result[out] = None
    result[f"{out}_model"] = None
    result[f"{out}_status"] = NOT_SENT
    if spec is not None:
        result[f"{out}_data"] = None
    total, resumed, failed, sent = len(frame), 0, 0, 0
    stop_message, started = "", time.monotonic()
    for position, (index, row) in enumerate(frame.iterrows()):
        text = interpolate(prompt, {c: row[c] for c in columns})
        key = f"{index}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        place = result.index[position]
        if key in answered:
            logged = answered[key]
            _fill(result, place, out, logged["response"], logged["served_model"], spec)
            resumed += 1
        elif not stop_message:
            sent += 1
            try:
                answer = session.ask(text, chosen, batch_id=bid, row_key=key, schema=spec,
                                     **options)
                _fill(result, place, out, answer.text, answer.model, spec)
            except (DailyRateLimit, BudgetExceeded) as error:
                result.loc[place, f"{out}_status"] = error.kind
                stop_message = (f"Stopped at row {position + 1} of {total}: {error.message} "
                                "Run the same call again to resume; answered rows are kept.")
                failed += 1
            except OpenRouterError as error:
                result.loc[place, f"{out}_status"] = error.kind
                failed += 1
        if progress is not None:
            done = position + 1
            elapsed = time.monotonic() - started
            eta = (elapsed / sent) * (total - done) if sent and not stop_message else None
            progress(BatchProgress(bid, done, total, resumed, failed,
                                   session.quota_state().day_remaining, eta, stop_message,
                                   finished=done == total))
    result.attrs["openrouter_batch"] = {"batch_id": bid, "resumed": resumed, "failed": failed,
                                        "message": stop_message}
    return result


def _fill(result: pd.DataFrame, place: Any, out: str, text: str | None, model: str | None,
          spec: SchemaSpec | None) -> None:
    result.at[place, out] = text
    result.at[place, f"{out}_model"] = model
    result.at[place, f"{out}_status"] = "ok"
    if spec is not None and text is not None:
        check = spec.check(text)
        result.at[place, f"{out}_data"] = check.data if check.ok else None


def text_progress(stream: Any = None) -> ProgressCallback:
    """A one-line, carriage-return progress report for terminals and scripts."""
    import sys

    out = stream or sys.stderr

    def report(state: BatchProgress) -> None:
        left = "" if state.day_remaining is None else f" · {state.day_remaining} left today"
        eta = "" if state.eta_s is None else f" · ETA {int(state.eta_s) // 60}:{int(state.eta_s) % 60:02d}"
        resumed = f" ({state.resumed} from the ledger)" if state.resumed else ""
        out.write(f"\rrows {state.done}/{state.total}{resumed}{left}{eta}   ")
        if state.message:
            out.write("\n" + state.message)
        if state.finished or state.message:
            out.write("\n")
        out.flush()

    return report
