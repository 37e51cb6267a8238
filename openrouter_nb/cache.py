"""A cache that saves quota: an identical request is answered from the ledger, not sent.

Opt-in (``cache=True`` on a session, a profile or one call; ``%openrouter cache on``;
``--no-cache`` per cell). The key is a SHA-256 of what the call would send: the model and its
fallbacks, the messages, every option that changes the answer (``max_tokens``,
``temperature``, ``seed``, ``reasoning``, ``provider``) and the schema. Every attempt's ledger
row keeps that hash (``request_hash``); an answered (and, with a schema, valid) row with the
same hash answers the call again. The cached answer is a ledger row of its own with
``status`` ``cached`` and no HTTP status, so the quota count (``Ledger.count_attempts``)
never counts it, and its footer says "cached from HH:MM".

The free router (``openrouter/free``) picks a model per request: a cached answer repeats the
model it picked then, and the answer's notes say so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .answer import Answer
from .request import option_fields

if TYPE_CHECKING:  # pragma: no cover
    from .call import Call, Engine

__all__ = ["ROUTER_NOTE", "lookup", "request_hash", "with_hash"]

ROUTER = "openrouter/free"
ROUTER_NOTE = ("cached answer of the free router: sent again, the router may pick another "
               "model (--no-cache to send it)")


def request_hash(call: Call) -> str:
    """The cache key of ``call``: what it sends, not how it is shown or recorded."""
    options = option_fields(call.options)
    options.pop("stream", None)  # streamed or not, the same answer
    key = {"models": list(call.options.chain), "messages": [m.to_wire() for m in call.messages],
           "options": options, "schema": call.spec.schema if call.spec else None}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def with_hash(call: Call) -> Call:
    """``call`` carrying its hash, so every row it writes can answer it again later."""
    return call if call.request_hash else replace(call, request_hash=request_hash(call))


def lookup(engine: Engine, call: Call) -> Answer | None:
    """The answer of an identical earlier request, recorded as a ``cached`` row; or None."""
    if not call.options.cache or call.request_hash is None:
        return None
    ledger, record = getattr(engine, "ledger", None), getattr(engine, "record_cached", None)
    if ledger is None or record is None:
        return None
    row = ledger.cached_answer(call.request_hash)
    if row is None:
        return None
    fields = call.row(1, call.options.model)
    fields.update(status="cached", served_model=row["served_model"], provider=row["provider"],
                  generation_id=row["generation_id"], response=row["response"],
                  prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
                  reasoning=row["reasoning"], reasoning_tokens=row["reasoning_tokens"],
                  finish_reason=row["finish_reason"], validated=row["validated"],
                  latency_s=0.0, error_message=f"answered from the ledger row of call "
                  f"{row['call_id']} ({_hhmm(row['epoch'])} UTC); nothing sent")
    message = _message(row)
    if call.turn_added:
        fields["turn_messages"] = json.dumps([*(m.to_wire() for m in call.turn_added), message])
    record(fields)
    return _answer(engine, call, row, message)


def _message(row: dict[str, Any]) -> dict[str, Any]:
    """The answer's assistant message: as the turn kept it (PDF ``annotations``, reasoning
    details, so a later turn does not parse or pay again), else its text."""
    kept = json.loads(row["turn_messages"]) if row.get("turn_messages") else []
    if kept and isinstance(kept[-1], dict) and kept[-1].get("role") == "assistant":
        return dict(kept[-1])
    return {"role": "assistant", "content": row["response"] or ""}


def _answer(engine: Engine, call: Call, row: dict[str, Any], message: dict[str, Any]) -> Answer:
    notes = list(call.notes)
    if ROUTER in call.options.chain:
        notes.append(ROUTER_NOTE)
    usage = {k: row[k] for k in ("prompt_tokens", "completion_tokens", "reasoning_tokens")
             if row.get(k) is not None}
    served = row["served_model"] or call.options.model
    answer = Answer(
        text=row["response"] or "", model=served, requested_model=call.options.model,
        provider=row["provider"], usage=usage, latency_s=0.0, call_id=call.call_id,
        attempts=0, sandbox=bool(row["sandbox"]), generation_id=row["generation_id"],
        finish_reason=row["finish_reason"], day_remaining=engine.day_remaining(served),
        mode=row["mode"] or engine.mode, reasoning=row["reasoning"], message=message,
        conversation=call.conversation, turn=call.turn, notes=tuple(notes),
        extra={"cached_at": row["epoch"], "cached_call_id": row["call_id"]},
    )
    if call.spec is not None and row["response"] is not None:
        check = call.spec.check(row["response"])
        answer.validated, answer.data = check.ok, check.data if check.ok else None
    return answer


def _hhmm(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%H:%M")
