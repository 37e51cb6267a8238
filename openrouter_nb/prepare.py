"""The first layer of a call: everything checked before anything is sent.

Each check either passes or refuses the call with one ledger row and a short error that says
what to do next; nothing reaches OpenRouter. In order: the prompt is there, at most three
models, no sensitive data in any part that will be sent (unless allowed), a usable schema,
reasoning options only for models that take them, and a conversation that fits the model's
context window.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

from . import prepare_attachments as attached
from . import privacy
from .api.errors import (
    BadRequestError,
    ModelUnavailableError,
    OpenRouterError,
    SensitiveInputBlocked,
)
from .catalog import FREE_ROUTER
from .ledger import Ledger
from .ledger_file import read_only_error
from .messages import TextPart
from .options import MAX_MODELS
from .validate import SchemaSpec

if TYPE_CHECKING:  # pragma: no cover
    from .call import Call, Engine

__all__ = ["estimate_tokens", "prepare", "supports"]

#: Below this many estimated prompt tokens a single call is not checked against the context
#: window (every model has more), which keeps the catalog out of short calls.
CONTEXT_CHECK_FROM = 2000


def prepare(engine: Engine, call: Call) -> Call:
    """``call`` checked and completed (its schema parsed), or a refusal raised."""
    ledger = getattr(engine, "ledger", None)
    if isinstance(ledger, Ledger) and ledger.read_only:
        # Nothing could record the attempt: refuse before anything is sent or counted.
        raise read_only_error(ledger.path)
    if not call.messages or not _has_content(call):
        _refuse(engine, call, BadRequestError(
            "The prompt is empty. Write something in the cell (or pass a non-empty string)."))
    chain = call.options.chain
    if len(chain) > MAX_MODELS:
        _refuse(engine, call, BadRequestError(
            f"At most {MAX_MODELS} models per call (the model plus {MAX_MODELS - 1} "
            f"fallbacks); got {len(chain)}."))
    _check_encodable(engine, call)
    _check_vision(engine, call)
    if not call.options.allow_sensitive:
        _guard(engine, call)
        call = attached.guard(engine, call, _refuse)
    call = _with_schema(engine, call)
    _check_reasoning(engine, call)
    _check_context(engine, call)
    return call


def _has_content(call: Call) -> bool:
    last = call.messages[-1]
    return any(not isinstance(p, TextPart) or p.text.strip() for p in last.parts)


def _refuse(engine: Engine, call: Call, error: OpenRouterError, *,
            keep_prompt: bool = True) -> NoReturn:
    row = call.row(1, call.options.model)
    if not keep_prompt:
        row["prompt"] = None  # the ledger keeps that something was blocked, not the text
    engine.record_failure(error, row)
    raise error


def _check_encodable(engine: Engine, call: Call) -> None:
    for message in call.messages:
        for part in message.parts:
            text = part.text if isinstance(part, TextPart) else part.payload
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = ord(text[exc.start])
                _refuse(engine, call, BadRequestError(
                    f"The {message.role} message holds a lone surrogate (U+{code:04X}) at "
                    f"character {exc.start}, which cannot be sent as UTF-8. Remove it (it "
                    "usually comes from a bad copy-paste or a file decoded the wrong way)."),
                    keep_prompt=False)


@lru_cache(maxsize=4096)
def _findings(text: str) -> tuple[privacy.Finding, ...]:
    # Messages are immutable: a conversation's earlier turns are scanned once, not per turn.
    return tuple(privacy.scan(text))


def _guard(engine: Engine, call: Call) -> None:
    findings = [finding for message in call.messages for part in message.parts
                if isinstance(part, TextPart) for finding in _findings(part.text)]
    if findings:
        _refuse(engine, call, SensitiveInputBlocked(privacy.describe(findings)),
                keep_prompt=False)


def _check_vision(engine: Engine, call: Call) -> None:
    """Images for a pinned model without image input: refused, listing free vision models.
    (The free router is sent the request as is: OpenRouter picks a model that can see.)"""
    if not attached.has_images(call):
        return
    for model in call.options.chain:
        info = None if model == FREE_ROUTER else _known(engine, model)
        if info is None or info.vision:
            continue  # the router, or unknown to the catalog: OpenRouter decides
        seeing = [m.id for m in engine.catalog.models()
                  if m.vision and m.free and not m.id.startswith("openrouter/")][:5]
        _refuse(engine, call, BadRequestError(
            f"{model} does not take image input, so nothing was sent. Pick a vision model "
            f"(%openrouter models --vision) or openrouter/free, which picks one: "
            f"{', '.join(seeing) or 'none in the catalog'}.", model=model))


def _with_schema(engine: Engine, call: Call) -> Call:
    schema = call.options.schema
    if schema is None:
        return call
    try:
        spec = schema if isinstance(schema, SchemaSpec) else SchemaSpec.of(schema)
    except Exception as exc:  # jsonschema.SchemaError, TypeError, ImportError
        _refuse(engine, call, BadRequestError(f"The schema cannot be used: {str(exc)[:200]}"))
    return replace(call, spec=spec)


def supports(engine: Engine, model: str, capability: str) -> bool:
    """Whether the catalog says ``model`` has ``capability`` (the free router: always)."""
    if model == FREE_ROUTER:
        return True  # the router itself picks a model that supports the request
    try:
        info = engine.catalog.get(model)
    except OpenRouterError:
        return False
    return bool(info and getattr(info, capability))


def unknown_model(engine: Engine, model: str) -> OpenRouterError | None:
    """The error OpenRouter would give for a model id the catalog does not list, else None.

    Used when a call is refused locally (a per-day block): the catalog (cached in the home
    folder; fetching it costs no quota) tells a wrong id apart without sending anything.
    A catalog that cannot be read decides nothing.
    """
    if model == FREE_ROUTER:
        return None
    try:
        if engine.catalog.get(model) is not None or not engine.catalog.models():
            return None
    except OpenRouterError:
        return None
    error = ModelUnavailableError(
        f"Unknown model id: {model} is not in the model catalog. Model ids look like "
        "'vendor/model:free'; list them with %openrouter models --free.", model=model)
    error.reason = "unknown_model"
    return error


def _known(engine: Engine, model: str) -> Any:
    try:
        return engine.catalog.get(model)
    except OpenRouterError:
        return None


def _check_reasoning(engine: Engine, call: Call) -> None:
    if call.options.reasoning is None:
        return
    for model in call.options.chain:
        if model == FREE_ROUTER:
            continue
        info = _known(engine, model)
        if info is None or info.reasoning:
            continue  # unknown to the catalog: OpenRouter decides
        others = [m.id for m in engine.catalog.models() if m.reasoning and m.free][:4]
        hint = f" Free reasoning models: {', '.join(others)}." if others else ""
        _refuse(engine, call, BadRequestError(
            f"{model} does not take reasoning options (its catalog entry lists no "
            f"'reasoning' parameter), so nothing was sent. Leave out reasoning= "
            f"(--reasoning), or pick a reasoning model.{hint}", model=model))


def estimate_tokens(call: Call) -> int:
    """A rough prompt size: about four characters a token, plus a few per message; an
    attached image or file counts what a model reads of it, not its base64 characters."""
    chars = sum(len(p.text) if isinstance(p, TextPart) else len(p.payload)
                for m in call.messages for p in m.parts if not attached.is_media(p))
    media = sum(attached.media_tokens(p) for m in call.messages for p in m.parts)
    return chars // 4 + 4 * len(call.messages) + media


def _check_context(engine: Engine, call: Call) -> None:
    model = call.options.model
    tokens = estimate_tokens(call)
    if model == FREE_ROUTER or (tokens < CONTEXT_CHECK_FROM and not call.turn):
        return
    info = _known(engine, model)
    if info is None or not info.context_length:
        return
    needed = tokens + (call.options.max_tokens or 0)
    if needed <= info.context_length:
        return
    what = "This conversation" if call.turn else "This prompt"
    _refuse(engine, call, BadRequestError(
        f"{what} (about {tokens:,} prompt tokens) plus max_tokens {call.options.max_tokens} "
        f"does not fit {model}'s context of {info.context_length:,} tokens; nothing was sent. "
        "Resend fewer turns (history=N, --history N), lower max_tokens, start over with "
        "reset(), or pick a model with a longer context (%openrouter models --min-context N).",
        model=model))
