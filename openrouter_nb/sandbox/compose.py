"""Composing one answer before it is rendered: its reasoning, content or tool call, the
``max_tokens`` cap, answer-shaping faults, usage and pace.

Reasoning comes first and counts against ``max_tokens`` (reference §2.6): a model that thinks
longer than the cap returns ``content: ""`` with ``finish_reason: "length"`` (its reasoning
cut at the cap); otherwise the content is cut to what is left.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import answers, tooluse
from .catalog import CatalogModel
from .history import topic_of, user_text
from .pacing import Pace
from .reasoning import SUMMARY_TOKENS, ReasoningPlan, encrypted_detail

__all__ = ["MID_FAULTS", "Answer", "Thought", "compose", "reasoning_only"]

MID_FAULTS = ("error_in_choices", "midstream_error", "midstream_error_done", "truncated_stream")


@dataclass(frozen=True)
class Thought:
    """The reasoning of an answer: the ``pieces`` shown (all the thinking, or a summary of
    it), the ``tokens`` spent (counted in usage, shown or not) and the detail ``style``."""

    pieces: tuple[str, ...]
    tokens: int
    style: str = "text"
    encrypted: dict[str, Any] | None = None  # "openai" style: the reasoning.encrypted item

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def shown(self) -> bool:
        return bool(self.pieces) or self.encrypted is not None

    @property
    def hidden(self) -> int:
        """Tokens spent without a piece to show (excluded, or beyond a summary)."""
        return max(0, self.tokens - len(self.pieces))

    def cut(self, cap: int) -> Thought:
        """This thought stopped after ``cap`` tokens."""
        return replace(self, pieces=self.pieces[:cap], tokens=min(self.tokens, cap))


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
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    thought: Thought | None = None
    pace: Pace = field(default_factory=Pace)
    annotations: list[dict[str, Any]] = field(default_factory=list)  # parsed files (media.py)
    file_cost: float = 0.0  # what the file-parser engine charged

    @property
    def content(self) -> str:
        return "".join(self.tokens)

    @property
    def reasoning_tokens(self) -> int:
        return self.thought.tokens if self.thought is not None else 0

    @property
    def tool_tokens(self) -> int:
        return sum(len(json.dumps(c)) // 4 for c in self.tool_calls)

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_tokens + len(self.tokens) + self.tool_tokens

    @property
    def exhausted(self) -> bool:
        """Reasoning used the whole ``max_tokens``: nothing else came out."""
        return self.finish == "length" and not self.tokens and self.reasoning_tokens > 0

    @property
    def latency_s(self) -> float:
        return self.pace.total_s

    def usage(self, extra_reasoning: int = 0) -> dict[str, Any]:
        """The ``usage`` object; ``extra_reasoning`` reproduces a real stream that reported
        one more reasoning token than completion tokens (reference §2.6)."""
        done = self.completion_tokens
        p_cost, c_cost = self.model.price_of(self.prompt_tokens, done)
        p_cost += self.file_cost
        return {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": done,
            "total_tokens": self.prompt_tokens + done, "cost": round(p_cost + c_cost, 10) or 0,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {"upstream_inference_cost": None,
                             "upstream_inference_prompt_cost": round(p_cost, 10) or 0,
                             "upstream_inference_completions_cost": round(c_cost, 10) or 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens + extra_reasoning, "image_tokens": 0},
        }

    def head(self) -> dict[str, Any]:
        return {"id": self.gen_id, "provider": self.model.provider, "model": self.model.id}


def _content(model: CatalogModel, body: Mapping[str, Any], rng: random.Random,
             rel: random.Random, forced: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The answer's content tokens, or its tool call: JSON, a tool call, or prose."""
    messages = body["messages"]
    topic = topic_of(messages)
    rf = body.get("response_format")
    if body.get("tools"):
        calls = tooluse.plan_calls(model, body, rng, rel)
        if calls:
            return [], calls
    if messages and (messages[-1] or {}).get("role") == "tool":
        return answers.tokenize(tooluse.answer_from_results(model.id, messages)), []
    if isinstance(rf, Mapping) and rf.get("type") in ("json_schema", "json_object") \
            and forced is None:
        value = answers.json_answer(rf, model.id, topic, rng)
        schema = (rf.get("json_schema") or {}).get("schema")
        reliability = model.reliability if model.structured else model.reliability / 2
        text = (json.dumps(value, ensure_ascii=False) if rel.random() <= reliability
                else answers.break_json(value, schema, rel))
        return answers.tokenize(text), []
    if forced is None and (schema := answers.schema_in_prompt(messages)) is not None:
        # A schema in the prompt: a model tries to follow it, less reliably than with
        # response_format, and writes JSON as chat models do (fences, a lead-in).
        value = answers.sample_from_schema(schema, rng, topic)
        text = (answers.chat_json(value, rel) if rel.random() <= model.reliability / 2
                else answers.break_json(value, schema, rel))
        return answers.tokenize(text), []
    n = int(forced) if forced is not None else None
    return answers.answer_text(model.id, messages, rng, n), []


def _thought(model: CatalogModel, body: Mapping[str, Any], plan: ReasoningPlan | None,
             seed: int) -> Thought | None:
    if plan is None or plan.tokens <= 0:
        return None
    if plan.exclude:
        return Thought((), plan.tokens, plan.style)
    messages = body["messages"]
    if plan.style == "openai":
        shown = min(plan.tokens, SUMMARY_TOKENS)
        summary = answers.reasoning_text(model.id, messages, shown, seed, plan.effort,
                                         summary=True)
        return Thought(tuple(summary), plan.tokens, "openai",
                       encrypted_detail((seed, model.id), plan.tokens))
    pieces = answers.reasoning_text(model.id, messages, plan.tokens, seed, plan.effort)
    return Thought(tuple(pieces), plan.tokens)


def reasoning_only(model: CatalogModel, body: Mapping[str, Any], fault: str | None) -> bool:
    """Whether this answer goes wholly into ``reasoning`` (the fault, or the model's quirk)."""
    phrase = model.reasoning_only_phrase
    return fault == "reasoning_only" or (
        phrase is not None and phrase in user_text(body["messages"]).lower())


def _into_reasoning(thought: Thought | None, tokens: list[str]) -> Thought:
    """The whole reply in the reasoning channel: the thinking, then the answer."""
    if thought is None:
        return Thought(tuple(tokens), len(tokens))
    if not thought.pieces:  # excluded: the reply is spent, and hidden with the thinking
        return replace(thought, tokens=thought.tokens + len(tokens))
    return Thought((*thought.pieces, "\n\n", *tokens), thought.tokens + 1 + len(tokens))


def _cap(body: Mapping[str, Any], thought: Thought | None, tokens: list[str],
         finish: str) -> tuple[Thought | None, list[str], str]:
    """Apply ``max_tokens``: reasoning first, then content, and say ``length`` if cut."""
    cap = body.get("max_tokens") or body.get("max_completion_tokens")
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        return thought, tokens, finish
    spent = thought.tokens if thought is not None else 0
    if thought is not None and spent >= cap and spent > 0:
        cut_off = spent > cap or bool(tokens) or finish == "tool_calls"
        return thought.cut(cap), [], "length" if cut_off else finish
    if len(tokens) > cap - spent:
        return thought, tokens[: cap - spent], "length"
    return thought, tokens, finish


def compose(model: CatalogModel, body: Mapping[str, Any], headers: Mapping[str, str],
            fault: str | None, plan: ReasoningPlan | None, seed: int, output_seed: int,
            ) -> tuple[Thought | None, list[str], list[dict[str, Any]], str]:
    """(thought, content tokens, tool calls, finish reason) of one answer.

    ``seed`` is the sandbox seed; ``output_seed`` varies with each repeat of a request (how
    reliably JSON comes out); ``plan`` is the reasoning (``reasoning.plan_reasoning``).
    """
    messages = body["messages"]
    rng = random.Random(answers.digest(seed, model.id, messages, body.get("response_format"),
                                       body.get("tools"), body.get("tool_choice")))
    rel = random.Random(output_seed)
    forced = headers.get("x-sandbox-answer-tokens")
    tokens, tool_calls = _content(model, body, rng, rel, forced)
    if fault in MID_FAULTS and len(tokens) < 2:
        tokens, tool_calls = answers.answer_text(model.id, messages, rng), []
    thought = _thought(model, body, plan, answers.digest(seed, model.id, messages, "thought"))
    if reasoning_only(model, body, fault) and not tool_calls:
        thought, tokens = _into_reasoning(thought, tokens), []
    finish = "tool_calls" if tool_calls else "stop"
    thought, tokens, finish = _cap(body, thought, tokens, finish)
    if finish == "length" and not tokens:
        tool_calls = []
    if fault == "empty_content":
        thought, tokens, tool_calls, finish = None, [], [], "stop"
    return thought, tokens, tool_calls, finish
