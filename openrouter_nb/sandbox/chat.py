"""``POST /chat/completions``: validation, quota, routing and fallback, faults, then the answer.

Written against :class:`~.host.ChatHost` (implemented by ``app.Sandbox``); composing the
answer is ``compose.py``, rendering it JSON or SSE is ``render.py``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import answers, media
from .catalog import FREE_ROUTER, CatalogModel, by_id
from .compose import Answer, compose
from .faults import ANSWER_FAULTS, FALLBACK_FAULTS, FAULTS, FaultContext, fault_error, quota_429
from .history import bad_message, prompt_tokens, user_text
from .host import ChatHost
from .pacing import INSTANT, check_speed, pace_for
from .providers import is_down
from .reasoning import ReasoningPlan, ReasoningRefused, check_request, plan_reasoning
from .render import render
from .response import RecordedRequest, SandboxResponse, error_response
from .routing import Needs, RoutingError, candidates, needs_of, rank_key, resolve

__all__ = ["handle_chat"]

#: Injected faults that imitate a quota rejection not counted in the day (see quota.py).
QUOTA_FAULTS = frozenset({"rate_limit_day"})

Route = tuple[str, list[CatalogModel] | RoutingError]


@dataclass
class _Request:
    """One validated chat request on its way through the models it may try."""

    host: ChatHost
    key: str
    uid: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    rec: RecordedRequest
    ids: list[str]
    listed: list[str] | None  # faults from X-Sandbox-Fault, one per model attempt
    down: frozenset[str]


def handle_chat(host: ChatHost, key: str, headers: Mapping[str, str], body: Any,
                rec: RecordedRequest) -> SandboxResponse:
    """Serve one chat request (``headers`` has lower-case names)."""
    uid = host.user_id(key)
    try:
        ids, needs, listed = _validate(body, headers, uid)
    except RoutingError as exc:
        return exc.response
    if any(getattr(by_id(i), "is_free", False) for i in ids):
        decision = host.quota.attempt(key)
        if not decision.allowed:
            rec.notes.append(f"quota:{decision.kind}")
            return quota_429(str(decision.kind), decision.limit, decision.reset_ms,
                             high_balance=host.high_balance, user_id=uid)
    down = host.down_providers | _slug_list(headers.get("x-sandbox-provider-down", ""))
    req = _Request(host, key, uid, headers, body, rec, ids, listed, down)
    last: SandboxResponse | None = None
    for attempt, (requested, routes) in enumerate(_routes(host, ids, needs, uid)):
        last, final = _try(req, attempt, requested, routes)
        if final:
            return last
    assert last is not None
    return last


def _validate(body: Any, headers: Mapping[str, str], uid: str
              ) -> tuple[list[str], Needs, list[str] | None]:
    """Request-level checks (400s that never reach the quota); raises RoutingError."""
    def bad(message: str) -> RoutingError:
        return RoutingError(error_response(400, message, user_id=uid), model_level=False)

    if not isinstance(body, Mapping):
        raise bad("Invalid JSON body: expected an object.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("Input required: 'messages' must be a non-empty array.")
    problem = bad_message(messages)
    if problem is not None:
        raise bad(problem)
    if (too_big := media.oversized_image(messages)) is not None:
        raise RoutingError(error_response(413, too_big, {"provider_name": None}, user_id=uid),
                           model_level=False)
    ids, needs, listed = candidates(body), needs_of(body), _faults_from(headers)
    try:
        check_request(body)
        check_speed(headers.get("x-sandbox-speed", INSTANT).strip().lower())
    except ValueError as exc:  # ReasoningRefused included
        raise bad(str(exc)) from None
    return ids, needs, listed


def _try(req: _Request, attempt: int, requested: str,
         routes: list[CatalogModel] | RoutingError) -> tuple[SandboxResponse, bool]:
    """Try one requested model: (its response, whether it is the final one)."""
    host, body, rec = req.host, req.body, req.rec
    if isinstance(routes, RoutingError):
        rec.notes.append(f"{requested}: {routes.response.status}")
        return routes.response, not routes.model_level
    model = _healthy(routes, req.down, rec)
    ctx = FaultContext(model or routes[-1], req.uid, host.clock(), host.rpm, host.rpd,
                       host.window_s, host.high_balance, user_text(body["messages"]),
                       host.hang_s(req.headers))
    if model is None:  # every endpoint allowed to serve is down: the upstream error
        err = fault_error("provider_502", ctx)
        assert err is not None
        return err, False
    try:
        plan = plan_reasoning(model.reasoning, body, answers.digest(body["messages"]))
    except ReasoningRefused as exc:
        rec.notes.append(f"{model.id}: {exc}")
        return error_response(400, str(exc), {"provider_name": None}, user_id=req.uid), False
    fault = _next_fault(host, req.listed, attempt) or _natural_fault(host, model, body)
    if fault is not None:
        rec.fault = fault if rec.fault is None else f"{rec.fault},{fault}"
        err = fault_error(fault, ctx)
        if err is not None:
            rec.notes.append(f"{model.id}: fault {fault}")
            if fault in QUOTA_FAULTS and model.is_free:
                host.quota.uncount_day(req.key)  # like the quota's own 429s
            return err, not (fault in FALLBACK_FAULTS and attempt + 1 < len(req.ids))
    parses = media.file_parses(body["messages"])
    ptoks = prompt_tokens(body["messages"]) + sum(p.tokens for p in parses)
    if ptoks > model.context_length:
        return error_response(400, f"This endpoint's maximum context length is "
                              f"{model.context_length} tokens. However, you requested about "
                              f"{ptoks} tokens. Please reduce the length of the messages.",
                              {"error_type": "context_length_exceeded"}, user_id=req.uid), False
    rec.model = model.id
    ans = _answer(req, model, requested == FREE_ROUTER, fault, plan, ptoks)
    _attach(ans, body, parses)
    return render(host, ans, body, req.key, rec), True


def _answer(req: _Request, model: CatalogModel, routed: bool, fault: str | None,
            plan: ReasoningPlan | None, ptoks: int) -> Answer:
    host, body = req.host, req.body
    thought, tokens, tool_calls, finish = compose(
        model, body, req.headers, fault, plan, host.seed,
        host.attempt_seed("output", model.id, body))
    ans = Answer(host.new_generation_id(), model, routed, int(host.clock()), tokens, finish,
                 ptoks, fault if fault in ANSWER_FAULTS else None, tool_calls, thought)
    ans.pace = pace_for(host.speed_settings, req.headers, model, ans.completion_tokens)
    return ans


def _attach(ans: Answer, body: Mapping[str, Any], parses: list[media.FileParse]) -> None:
    """Attachments: a description of what was sent, annotations of files parsed now."""
    ans.annotations = [p.annotation() for p in parses if p.fresh]
    ans.file_cost = media.parse_cost(parses, body)
    said = media.describe(body["messages"], parses)
    if said and ans.tokens and not body.get("response_format"):
        ans.tokens = [*answers.tokenize(said), *ans.tokens]


def _faults_from(headers: Mapping[str, str]) -> list[str] | None:
    raw = headers.get("x-sandbox-fault")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise RoutingError(error_response(400, f"Unknown sandbox fault {unknown[0]!r}. Known "
                                          f"faults: {', '.join(FAULTS)}"), model_level=False)
    return names


def _next_fault(host: ChatHost, listed: list[str] | None, attempt: int) -> str | None:
    if listed is not None:
        return listed[attempt] if attempt < len(listed) else None
    return host.next_queued_fault()


def _resolve(host: ChatHost, requested: str, needs: Needs, uid: str) -> Route:
    try:
        return requested, resolve(requested, needs, host.router_choice, uid)
    except RoutingError as exc:
        return requested, exc


def _routes(host: ChatHost, ids: list[str], needs: Needs, uid: str) -> Iterator[Route]:
    """Each requested model with its endpoints in try order (or why none can serve).

    Models resolve one by one, as they are tried; with ``provider.sort`` partitioned
    ``"none"`` all resolve first and are tried best endpoint first, across the models.
    """
    prefs = needs.provider
    if not (prefs.sort and prefs.partition == "none" and len(ids) > 1):
        yield from (_resolve(host, i, needs, uid) for i in ids)
        return
    routes = [_resolve(host, i, needs, uid) for i in ids]
    yield from sorted(routes, key=lambda r: rank_key(r[1], prefs)
                      if isinstance(r[1], list) else float("inf"))


def _slug_list(raw: str) -> frozenset[str]:
    return frozenset(s.strip().lower() for s in raw.split(",") if s.strip())


def _healthy(routes: list[CatalogModel], down: frozenset[str],
             rec: RecordedRequest) -> CatalogModel | None:
    """The first endpoint (as a served model) whose provider is not down."""
    for served in routes:
        if not is_down(served.primary, down):
            return served
        rec.notes.append(f"{served.id}: provider {served.provider} down")
    return None


def _natural_fault(host: ChatHost, model: CatalogModel, body: Mapping[str, Any]) -> str | None:
    if not host.natural_faults:
        return None
    rng = random.Random(host.attempt_seed("fault", model.id, body))
    return rng.choice(("upstream_429", "provider_502")) if rng.random() > model.reliability \
        else None
