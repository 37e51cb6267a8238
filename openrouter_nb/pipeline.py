"""The call pipeline: ``run`` hands a ``Call`` down a short chain of layers.

Like httpx's ``send -> _send_handling_auth -> _send_handling_redirects ->
_send_single_request``, each layer is a function with one concern that calls the next:

- :func:`run` prepares the call (:mod:`openrouter_nb.prepare`: validation, privacy guard,
  schema, reasoning and context checks) and builds the ``Answer``;
- :mod:`openrouter_nb.cache` answers an identical earlier request from the ledger when the
  call asks for it (``cache=True``): nothing is sent;
- :func:`with_reasks` re-asks when a schema is given and the answer does not match it;
- :func:`with_retries` retries and falls back as ``retry.RULES`` says for each kind of error;
- :func:`attempt` is the only layer that touches the budget, the pacing slot, the client and
  the ledger: one request, one ledger row, whatever happens (an interrupt included).

The layers need an :class:`Engine` (what a ``Session`` provides), not a ``Session``, so each
can be tested alone with a small stand-in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from . import cache, prepare
from .answer import Answer
from .api.client import DeltaCallback
from .api.errors import (
    InvalidOutputError,
    ModelUnavailableError,
    OpenRouterError,
    TruncatedError,
)
from .api.types import ChatResult, StreamDelta
from .call import Call, Engine, Judge
from .messages import assistant, user
from .quota import Slot
from .request import build_body
from .retry import RetryPolicy
from .validate import Validation

__all__ = ["Call", "Engine", "Outcome", "attempt", "run", "with_reasks", "with_retries"]

SANDBOX_SERVER = "openrouter-nb-sandbox"  # the Server header of `python -m openrouter_nb.sandbox`


@dataclass
class Outcome:
    """What the layers below hand up: the result, the model asked, the schema check."""

    result: ChatResult
    model: str
    check: Validation | None = None
    fallback: bool = False
    attempts: int = 0


@dataclass
class _Count:
    attempts: int = 0


# -- layer 0: the chain -------------------------------------------------------------------------
def run(engine: Engine, call: Call) -> Answer:
    """Prepare ``call``, send it down the layers, and build the ``Answer``."""
    count = _Count()
    try:
        call = cache.with_hash(prepare.prepare(engine, call))
        cached = cache.lookup(engine, call)  # the cache layer: an identical request, not sent
        if cached is not None:
            return cached
        outcome = with_reasks(engine, call, count)
    except OpenRouterError as error:
        error.call_id, error.attempts = call.call_id, count.attempts
        raise
    return answer_of(engine, call, outcome, count.attempts)


# -- layer 1: re-asks ---------------------------------------------------------------------------
def with_reasks(engine: Engine, call: Call, count: _Count) -> Outcome:
    """Send ``call``; while the answer does not match the schema, re-ask with the error."""
    reasks = 0
    while True:
        outcome = with_retries(engine, call, count, _judge(engine, call, reasks))
        if outcome.check is None or outcome.check.ok:
            return outcome
        reasks += 1
        call.event("reask", error=outcome.check.error, attempt=count.attempts)
        correction = (f"That reply was not valid: {outcome.check.error}. "
                      "Reply again with only the corrected JSON.")
        call = replace(call, messages=(*call.messages,
                                       assistant({"content": outcome.result.text}),
                                       user(correction)))


def _judge(engine: Engine, call: Call, reasks: int) -> Judge:
    spec = call.spec

    def judge(result: ChatResult, model: str) -> tuple[Validation | None, OpenRouterError | None]:
        if spec is None or result.tool_calls:  # a tool step is not the answer
            return None, None
        check = spec.check(result.text)
        if check.ok or reasks < call.options.retries:
            return check, None
        return check, _invalid_output(engine, result, check.error or "", reasks, model)

    return judge


def _invalid_output(engine: Engine, result: ChatResult, error: str, reasks: int,
                    model: str) -> InvalidOutputError:
    advice = ("the model supports structured outputs but broke them: retry with more "
              "--retries, pick a more reliable model, or loosen the schema"
              if prepare.supports(engine, model, "structured") else
              "pick a model with structured outputs (%openrouter models --structured) or "
              "loosen the schema")
    failure = InvalidOutputError(
        f"The answer did not match the schema after {reasks + 1} "
        f"{'try' if reasks == 0 else 'tries'}: {error}. Next: {advice}.",
        http_status=200, model=result.model, provider=result.provider)
    failure.partial_text = result.text
    return failure


# -- layer 2: retries and fallbacks -------------------------------------------------------------
def with_retries(engine: Engine, call: Call, count: _Count, judge: Judge) -> Outcome:
    """Try the model, retrying or moving to the next explicit fallback as the rules say."""
    chain = call.options.chain
    policy: RetryPolicy | None = None  # made at the first failure: most calls need none
    index, retries_used = 0, 0
    while True:
        try:
            return attempt(engine, call, chain[index], count, judge, fallback=index > 0)
        except OpenRouterError as error:
            policy = policy or RetryPolicy(retries=call.options.retries)
            decision = policy.decide(error, retries_used=retries_used,
                                     has_fallback=index + 1 < len(chain), now=engine.clock())
            if decision.action == "stop":
                raise
            call.event(decision.action, error=error, wait_s=decision.wait_s,
                       reason=decision.reason, attempt=count.attempts)
            if decision.action == "fallback":
                index += 1
                continue
            retries_used += 1
            if decision.wait_s > 0:
                engine.sleep(decision.wait_s)


def _advise(engine: Engine, error: OpenRouterError, call: Call, model: str) -> None:
    """Finish ``error``'s message with what to do next, from what only this call knows."""
    if isinstance(error, TruncatedError):
        cap = call.options.max_tokens
        effort = (call.options.reasoning_request or {}).get("effort")
        lower = "" if effort in ("low", "minimal") else " or think less with --reasoning low " \
            "(reasoning='low')"
        error.message += (f" Reasoning counts against max_tokens ({cap}): raise it with "
                          f"--max-tokens {max(4096, 4 * (cap or 1024))} "
                          f"(max_tokens=...){lower}. Retrying the same request would not help.")
    elif len(call.options.chain) == 1:
        _suggest_alternatives(engine, error, model)


def _suggest_alternatives(engine: Engine, error: OpenRouterError, model: str) -> None:
    # (the catalog cannot tell which models a data policy or provider preferences allow)
    if not isinstance(error, ModelUnavailableError) or error.reason in (
            "data_policy", "provider_preferences"):
        return
    try:
        alternatives = engine.catalog.alternatives(model)
    except OpenRouterError:
        return
    if alternatives:
        error.message += " Free alternatives: " + ", ".join(m.id for m in alternatives) + "."


# -- layer 3: one attempt -----------------------------------------------------------------------
def attempt(engine: Engine, call: Call, model: str, count: _Count, judge: Judge, *,
            fallback: bool = False) -> Outcome:
    """One request to ``model``: budget, pacing slot, client call, exactly one ledger row."""
    count.attempts += 1
    row = call.row(count.attempts, model, fallback=fallback)
    engine.spend_budget(row)
    slot = _slot(engine, model, row)
    if slot.waited:
        call.event("waited", seconds=slot.waited, model=model)
    body = build_body(model, [m.to_wire() for m in call.messages], call.options, call.spec,
                      structured=call.spec is not None and prepare.supports(
                          engine, model, "structured"))
    partial: list[str] = []
    started = time.perf_counter()
    try:
        result = engine.send(body, call.options, _collecting(call.on_delta, partial))
    except OpenRouterError as error:
        _advise(engine, error, call, model)  # before the row keeps the message
        engine.record_failure(error, row, wait_s=slot.waited)
        _settle(engine, slot, error=error)
        raise
    except KeyboardInterrupt:
        engine.record_interrupt(row, "".join(partial), started)
        _settle(engine, slot)
        raise
    check, failure = judge(result, model)
    ending: list[dict[str, Any]] | None = [] if call.run_tools is None else None
    try:
        if call.run_tools is not None and failure is None:  # the step's tools, on its own row
            row["tool_calls"], ending = call.run_tools(result)
    except KeyboardInterrupt:  # stopped while a tool ran: the answer came, the task did not end
        row.update(status="interrupted", error_kind="interrupted", error_message="interrupted "
                   "while its tools ran (the answer arrived; the task did not finish)")
        raise
    finally:
        if call.turn_added and failure is None and ending is not None:  # the turn is complete
            row["turn_messages"] = json.dumps([*(m.to_wire() for m in call.turn_added),
                                               _assistant_message(result), *ending])
        engine.record_answer(result, row, wait_s=slot.waited, check=check, failure=failure)
        _settle(engine, slot, served=result.model)
    if failure is not None:
        raise failure
    return Outcome(result, model, check, fallback)


def _slot(engine: Engine, model: str, row: dict[str, Any]) -> Slot:
    if engine.mode == "replay":
        return Slot(None, 0.0)  # replayed answers send nothing: no pacing, no quota
    try:
        return engine.quota.acquire(model)
    except OpenRouterError as error:  # a daily block known before sending
        truer = prepare.unknown_model(engine, model)  # the block must not hide a wrong id
        engine.record_failure(truer or error, row)
        if truer is not None:
            raise truer from None
        raise
    except KeyboardInterrupt:  # stopped while waiting for a slot: nothing was sent
        engine.record_interrupt(row, "", time.perf_counter())
        raise


def _settle(engine: Engine, slot: Slot, *, error: OpenRouterError | None = None,
            served: str | None = None) -> None:
    engine.quota.settle(slot)
    if error is not None:
        engine.quota.note_error(error)
    elif served is not None or slot.stamp is not None:
        engine.quota.note_result(served)


def _collecting(on_delta: DeltaCallback | None, partial: list[str]) -> DeltaCallback:
    """Pass deltas on, keeping the answer's text so an interrupt can log what arrived."""
    def collect(delta: StreamDelta) -> None:
        if getattr(delta, "kind", "text") == "text":
            partial.append(delta.text)
        if on_delta is not None:
            on_delta(delta)

    return collect


# -- the answer ---------------------------------------------------------------------------------
def answer_of(engine: Engine, call: Call, outcome: Outcome, attempts: int) -> Answer:
    """The ``Answer`` for a successful call (reasoning-only replies flagged, not dropped)."""
    result = outcome.result
    requested = call.options.model
    text, notes = result.text, list(call.notes)
    reasoning = getattr(result, "reasoning", None)
    if not text.strip() and reasoning and not getattr(result, "tool_calls", ()):
        text = reasoning
        notes.append("the model answered only in its reasoning: shown as the answer")
    if result.finish_reason == "length":
        notes.append(f"cut at max_tokens ({call.options.max_tokens}): raise --max-tokens "
                     "for the rest")
    usage = result.usage.as_dict() if result.usage else {}
    answer = Answer(
        text=text, model=result.model, requested_model=requested, provider=result.provider,
        usage=usage, latency_s=result.latency_s, ttft_s=result.ttft_s, call_id=call.call_id,
        attempts=attempts, sandbox=engine.mode == "sandbox" or _simulated(result),
        generation_id=result.generation_id, finish_reason=result.finish_reason,
        fallback=result.model if outcome.fallback else None,
        day_remaining=engine.day_remaining(outcome.model), mode=engine.mode,
        reasoning=reasoning, message=_assistant_message(result),
        conversation=call.conversation, turn=call.turn, notes=tuple(notes),
    )
    if outcome.check is not None:
        answer.validated, answer.data = True, outcome.check.data
    return answer


def _assistant_message(result: ChatResult) -> dict[str, Any]:
    make = getattr(result, "assistant_message", None)
    if callable(make):
        message: dict[str, Any] = make()
        return message
    return {"role": "assistant", "content": result.text}


def _simulated(result: ChatResult) -> bool:
    return (result.server or "").startswith(SANDBOX_SERVER)
