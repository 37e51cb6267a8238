"""``POST /chat/completions``: validation, quota, faults, fallback, JSON and SSE answers."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import answers
from .catalog import FREE_ROUTER, CatalogModel, by_id
from .faults import ANSWER_FAULTS, FALLBACK_FAULTS, FAULTS, FaultContext, fault_error, quota_429
from .providers import is_down
from .response import RecordedRequest, SandboxResponse, error_response, json_response
from .routing import Needs, RoutingError, candidates, needs_of, rank_key, resolve

if TYPE_CHECKING:
    from .app import Sandbox

__all__ = ["handle_chat"]

COMMENT = b": OPENROUTER PROCESSING\n\n"
MID_FAULTS = ("error_in_choices", "midstream_error", "midstream_error_done", "truncated_stream")
MIDSTREAM_ERROR = {"code": 502, "message": "Upstream provider error: connection reset mid-stream",
                   "metadata": {"error_type": "provider_unavailable"}}


@dataclass
class Answer:
    """A generated answer before it is rendered as JSON or SSE."""

    gen_id: str
    model: CatalogModel
    routed: bool
    created: int
    tokens: list[str]
    finish: str
    prompt_tokens: int
    fault: str | None
    latency_s: float
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self.tokens)

    def usage(self) -> dict[str, Any]:
        done = len(self.tokens) + sum(len(json.dumps(c)) // 4 for c in self.tool_calls)
        p_cost, c_cost = self.model.price_of(self.prompt_tokens, done)
        return {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": done,
            "total_tokens": self.prompt_tokens + done, "cost": round(p_cost + c_cost, 10) or 0,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {"upstream_inference_cost": None,
                             "upstream_inference_prompt_cost": round(p_cost, 10) or 0,
                             "upstream_inference_completions_cost": round(c_cost, 10) or 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
        }

    def head(self) -> dict[str, Any]:
        return {"id": self.gen_id, "provider": self.model.provider, "model": self.model.id}


def _faults_from(sb: Sandbox, headers: Mapping[str, str]) -> list[str] | None:
    raw = headers.get("x-sandbox-fault")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise RoutingError(error_response(400, f"Unknown sandbox fault {unknown[0]!r}. Known "
                                          f"faults: {', '.join(FAULTS)}"), model_level=False)
    return names


def _next_fault(sb: Sandbox, listed: list[str] | None, attempt: int) -> str | None:
    if listed is not None:
        return listed[attempt] if attempt < len(listed) else None
    with sb._lock:
        return sb._fault_queue.popleft() if sb._fault_queue else None


def _latency_s(sb: Sandbox, headers: Mapping[str, str], model: CatalogModel) -> float:
    if "x-sandbox-latency-ms" in headers:
        return max(0.0, float(headers["x-sandbox-latency-ms"])) / 1000
    if sb.latency_ms is not None:
        return sb.latency_ms / 1000
    return model.latency_ms / 1000 if sb.model_latency else 0.0


def handle_chat(sb: Sandbox, key: str, headers: Mapping[str, str], body: Any,
                rec: RecordedRequest) -> SandboxResponse:
    """Serve one chat request (``headers`` has lower-case names)."""
    uid = sb.user_id(key)
    if not isinstance(body, Mapping):
        return error_response(400, "Invalid JSON body: expected an object.", user_id=uid)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_response(400, "Input required: 'messages' must be a non-empty array.",
                              user_id=uid)
    try:
        ids = candidates(body)
        needs = needs_of(body)
        listed = _faults_from(sb, headers)
    except RoutingError as exc:
        return exc.response
    if any(getattr(by_id(i), "is_free", False) for i in ids):
        decision = sb.quota.attempt(key)
        if not decision.allowed:
            rec.notes.append(f"quota:{decision.kind}")
            return quota_429(str(decision.kind), decision.limit, decision.reset_ms,
                             high_balance=sb.high_balance, user_id=uid)
    down = sb.down_providers | _slug_list(headers.get("x-sandbox-provider-down", ""))
    last: SandboxResponse | None = None
    for attempt, (requested, routes) in enumerate(_routes(sb, ids, needs, uid)):
        if isinstance(routes, RoutingError):
            last = routes.response
            rec.notes.append(f"{requested}: {last.status}")
            if routes.model_level:
                continue
            return last
        model = _healthy(routes, down, rec)
        ctx = FaultContext(model or routes[-1], uid, sb.clock(), sb.rpm, sb.rpd, sb.window_s,
                           sb.high_balance, answers.user_text(messages), sb.hang_s(headers))
        if model is None:  # every endpoint allowed to serve is down: the upstream error
            last = fault_error("provider_502", ctx)
            assert last is not None
            continue
        fault = _next_fault(sb, listed, attempt) or _natural_fault(sb, model, body)
        if fault is not None:
            rec.fault = fault if rec.fault is None else f"{rec.fault},{fault}"
            err = fault_error(fault, ctx)
            if err is not None:
                last = err
                rec.notes.append(f"{model.id}: fault {fault}")
                if fault in FALLBACK_FAULTS and attempt + 1 < len(ids):
                    continue
                return err
        ptoks = answers.prompt_tokens(messages)
        if ptoks > model.context_length:
            last = error_response(400, f"This endpoint's maximum context length is "
                                  f"{model.context_length} tokens. However, you requested about "
                                  f"{ptoks} tokens. Please reduce the length of the messages.",
                                  {"error_type": "context_length_exceeded"}, user_id=uid)
            continue
        rec.model = model.id
        ans = _make_answer(sb, model, requested == FREE_ROUTER, body, headers, fault, ptoks)
        return _render(sb, ans, body, key, rec)
    assert last is not None
    return last


Route = tuple[str, list[CatalogModel] | RoutingError]


def _resolve(sb: Sandbox, requested: str, needs: Needs, uid: str) -> Route:
    try:
        with sb._lock:
            return requested, resolve(requested, needs, sb._router_rng, uid)
    except RoutingError as exc:
        return requested, exc


def _routes(sb: Sandbox, ids: list[str], needs: Needs, uid: str) -> Iterator[Route]:
    """Each requested model with its endpoints in try order (or why none can serve).

    Models resolve one by one, as they are tried; with ``provider.sort`` partitioned
    ``"none"`` all resolve first and are tried best endpoint first, across the models.
    """
    prefs = needs.provider
    if not (prefs.sort and prefs.partition == "none" and len(ids) > 1):
        yield from (_resolve(sb, i, needs, uid) for i in ids)
        return
    routes = [_resolve(sb, i, needs, uid) for i in ids]
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


def _natural_fault(sb: Sandbox, model: CatalogModel, body: Mapping[str, Any]) -> str | None:
    if not sb.natural_faults:
        return None
    rng = random.Random(sb.attempt_seed("fault", model.id, body))
    return rng.choice(("upstream_429", "provider_502")) if rng.random() > model.reliability \
        else None


def _make_answer(sb: Sandbox, model: CatalogModel, routed: bool, body: Mapping[str, Any],
                 headers: Mapping[str, str], fault: str | None, ptoks: int) -> Answer:
    messages = body["messages"]
    rng = random.Random(answers.digest(sb.seed, model.id, messages, body.get("response_format"),
                                       body.get("tools"), body.get("tool_choice")))
    rel = random.Random(sb.attempt_seed("output", model.id, body))
    forced = headers.get("x-sandbox-answer-tokens")
    topic = answers.topic_of(messages)
    rf = body.get("response_format")
    tool_calls: list[dict[str, Any]] = []
    if _wants_tool(body):
        tool_calls = [_tool_call(body, rng, topic)]
        tokens: list[str] = []
    elif isinstance(rf, Mapping) and rf.get("type") in ("json_schema", "json_object") \
            and forced is None:
        value = answers.json_answer(rf, model.id, topic, rng)
        schema = (rf.get("json_schema") or {}).get("schema")
        reliability = model.reliability if model.structured else model.reliability / 2
        text = (json.dumps(value, ensure_ascii=False) if rel.random() <= reliability
                else answers.break_json(value, schema, rel))
        tokens = answers.tokenize(text)
    elif forced is None and (schema := answers.schema_in_prompt(messages)) is not None:
        # A schema in the prompt: a model tries to follow it, less reliably than with
        # response_format, and writes JSON as chat models do (fences, a lead-in).
        value = answers.sample_from_schema(schema, rng, topic)
        text = (answers.chat_json(value, rel) if rel.random() <= model.reliability / 2
                else answers.break_json(value, schema, rel))
        tokens = answers.tokenize(text)
    else:
        tokens = answers.answer_text(model.id, messages, rng,
                                     int(forced) if forced is not None else None)
    if fault in MID_FAULTS and len(tokens) < 2:
        tokens, tool_calls = answers.answer_text(model.id, messages, rng), []
    finish = "tool_calls" if tool_calls else "stop"
    cap = body.get("max_tokens") or body.get("max_completion_tokens")
    if isinstance(cap, int) and cap >= 0 and len(tokens) > cap:
        tokens, finish = tokens[:cap], "length"
    if fault == "empty_content":
        tokens, tool_calls, finish = [], [], "stop"
    return Answer(sb.new_generation_id(), model, routed, int(sb.clock()), tokens, finish, ptoks,
                  fault if fault in ANSWER_FAULTS else None, _latency_s(sb, headers, model),
                  tool_calls)


def _wants_tool(body: Mapping[str, Any]) -> bool:
    choice = body.get("tool_choice", "auto")
    last_role = (body["messages"][-1] or {}).get("role")
    return bool(body.get("tools")) and choice != "none" and (
        choice == "required" or isinstance(choice, Mapping) or last_role == "user")


def _tool_call(body: Mapping[str, Any], rng: random.Random, topic: str) -> dict[str, Any]:
    tools = [t for t in body["tools"] if isinstance(t, Mapping)]
    choice = body.get("tool_choice")
    wanted = choice.get("function", {}).get("name") if isinstance(choice, Mapping) else None
    tool = next((t for t in tools if t.get("function", {}).get("name") == wanted), tools[0])
    fn = tool.get("function", {})
    args = answers.sample_from_schema(fn.get("parameters") or {"type": "object"}, rng, topic)
    return {"id": f"call_{rng.getrandbits(64):016x}", "type": "function", "index": 0,
            "function": {"name": fn.get("name", "tool"), "arguments": json.dumps(args)}}


def _render(sb: Sandbox, ans: Answer, body: Mapping[str, Any], key: str,
            rec: RecordedRequest) -> SandboxResponse:
    headers = {"X-Generation-Id": ans.gen_id}
    streamed = body.get("stream") is True
    failed = ans.fault in MID_FAULTS
    sb.store_generation(key, ans, streamed=streamed,
                        finish="error" if failed else ans.finish)
    if streamed:
        chunks = _stream(sb, ans, rec)
        return SandboxResponse(200, {"Content-Type": "text/event-stream",
                                     "Cache-Control": "no-cache", **headers},
                               chunks=_split(chunks) if sb.split_frames else chunks)
    sb.sleep(ans.latency_s)
    message: dict[str, Any] = {"role": "assistant", "content": ans.content, "refusal": None,
                               "reasoning": None}
    if ans.tool_calls:
        message["tool_calls"] = ans.tool_calls
    choice: dict[str, Any] = {"logprobs": None, "finish_reason": ans.finish,
                              "native_finish_reason": ans.finish, "index": 0,
                              "message": message}
    if failed:
        message["content"] = "".join(ans.tokens[: max(1, len(ans.tokens) // 3)])
        choice["finish_reason"] = choice["native_finish_reason"] = "error"
        choice["error"] = MIDSTREAM_ERROR
    obj = {**ans.head(), "object": "chat.completion", "created": ans.created,
           "choices": [choice], "system_fingerprint": None, "usage": ans.usage()}
    resp = json_response(200, obj, headers, prefix="\n   \n\n" if sb.leading_whitespace else "")
    if ans.fault == "truncated_stream":
        resp.body = resp.body[: len(resp.body) // 2]
    return resp


def _split(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Send every frame in two writes, cut mid-line, as TCP may deliver it."""
    try:
        for frame in chunks:
            half = max(1, len(frame) // 2)
            yield frame[:half]
            yield frame[half:]
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _frame(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() \
        + b"\n\n"


def _stream(sb: Sandbox, ans: Answer, rec: RecordedRequest) -> Iterator[bytes]:
    base = {**ans.head(), "object": "chat.completion.chunk", "created": ans.created}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish,
                  "native_finish_reason": finish, "logprobs": None}
        return _frame({**base, "choices": [choice], **extra})

    tokens = ans.tokens
    cut = max(1, len(tokens) // 3) if ans.fault else -1
    per_token = ans.latency_s * 0.6 / max(1, len(tokens))
    try:
        if sb.processing_comments:
            yield COMMENT
        sb.sleep(ans.latency_s * 0.4)
        yield chunk({"role": "assistant", "content": ""})
        for i, tok in enumerate(tokens):
            if sb.processing_comments and i == len(tokens) // 2 and i > 0:
                yield COMMENT
            if i == cut and ans.fault == "truncated_stream":
                rec.notes.append("stream truncated")
                return
            if i == cut and ans.fault in ("midstream_error", "midstream_error_done",
                                          "error_in_choices"):
                error = {**base, "error": MIDSTREAM_ERROR,
                         "choices": [{"index": 0, "delta": {"content": ""},
                                      "finish_reason": "error", "native_finish_reason": "error",
                                      "logprobs": None}]}
                yield _frame(error)
                if ans.fault == "midstream_error_done":
                    yield b"data: [DONE]\n\n"
                return
            sb.sleep(per_token)
            yield chunk({"role": "assistant", "content": tok})
        usage = ans.usage()
        if ans.tool_calls:
            yield chunk({"role": "assistant", "content": None, "tool_calls": ans.tool_calls})
        if sb.usage_in_last_delta:
            yield chunk({"role": "assistant", "content": ""}, ans.finish, usage=usage)
        else:
            yield chunk({"role": "assistant", "content": ""}, ans.finish)
            yield _frame({**base, "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"
    finally:
        sb.finish_record(rec)
