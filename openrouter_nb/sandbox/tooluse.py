"""Deterministic tool use: which tools a simulated model calls, with what, and its answer after.

A model calls a tool whose name or description shares words with the question (the last user
message), with arguments taken from the question (its numbers, an arithmetic expression, a
quoted or capitalised word, an enum value it names) so they fit the tool's schema. It calls
each matching tool once per question (again after a tool error), several in one turn when the
model makes parallel calls and ``parallel_tool_calls`` is not false, then answers from the
``tool`` messages it was sent. ``tool_choice: "required"`` (or a named function) makes it call
a tool every turn: a loop that never ends unless the client bounds it. Less reliable models
sometimes send arguments that do not fit the schema (a number as a word, a missing field).

Streamed calls arrive as the reference's captures do (§3.4): an opener per call (``index``,
``id``, ``type``, ``name``, ``arguments: ""``), then the arguments in pieces cut at awkward
points, parallel calls interleaved.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .catalog import CatalogModel
from .history import content_texts, user_text

__all__ = ["PARALLEL_MODELS", "answer_from_results", "plan_calls", "stream_fragments"]

#: Models that may ask for several tools in one turn.
PARALLEL_MODELS = frozenset({"google/gemini-2.0-flash-exp", "mistralai/mistral-small-3.2-24b-instruct",
                             "z-ai/glm-4.5-air", "openai/gpt-oss-20b"})
_STOP = frozenset("a an and are as at be by can do does for from get give how i in is it its "
                  "me my of on or please tell than that the then this to tool use using what "
                  "when which who with you your".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_OPERAND = r"\(*\s*\d+(?:\.\d+)?\s*\)*"
_EXPRESSION = re.compile(rf"-?{_OPERAND}(?:\s*[-+*/^%x×÷]\s*{_OPERAND})+")


def _words(text: str) -> set[str]:
    return {w.lower().rstrip("s") for w in _WORD.findall(text.replace("_", " "))} - _STOP


def _function(tool: Any) -> Mapping[str, Any]:
    fn = tool.get("function") if isinstance(tool, Mapping) else None
    return fn if isinstance(fn, Mapping) else {}


def _score(tool: Any, question: set[str]) -> int:
    fn = _function(tool)
    name = _words(str(fn.get("name", "")))
    described = _words(str(fn.get("description", "")))
    return 2 * len(name & question) + len(described & question)


def _this_turn(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return list(messages[last_user + 1:])


def _done_names(messages: Sequence[Mapping[str, Any]]) -> set[str]:
    """Tools this turn already called and that answered without an error."""
    names: dict[str, str] = {}
    done: set[str] = set()
    for message in _this_turn(messages):
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping):
                names[str(call.get("id"))] = str(_function(call).get("name", ""))
        if message.get("role") == "tool":
            text = " ".join(content_texts(message.get("content")))
            if not text.startswith("Error"):
                done.add(names.get(str(message.get("tool_call_id")), ""))
    return done


def plan_calls(model: CatalogModel, body: Mapping[str, Any], rng: random.Random,
               rel: random.Random) -> list[dict[str, Any]]:
    """The tool calls of this answer ([] to answer in words instead)."""
    tools = [t for t in body.get("tools") or () if _function(t).get("name")]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return []
    messages = body["messages"]
    question = user_text(messages)
    words = _words(question)
    if isinstance(choice, Mapping):
        wanted = _function(choice).get("name")
        chosen = [t for t in tools if _function(t).get("name") == wanted][:1] or tools[:1]
    else:
        done = _done_names(messages)
        ranked = sorted((t for t in tools if _score(t, words) > 0),
                        key=lambda t: -_score(t, words))
        chosen = [t for t in ranked if _function(t).get("name") not in done]
        if not chosen and choice == "required":
            chosen = ranked[:1] or tools[:1]
        parallel = model.id.removesuffix(":free") in PARALLEL_MODELS and body.get(
            "parallel_tool_calls") is not False
        chosen = chosen if parallel else chosen[:1]
    broken = rel.random() > model.reliability
    return [_call(model, t, question, rng, index, broken and index == 0)
            for index, t in enumerate(chosen)]


def _call(model: CatalogModel, tool: Any, question: str, rng: random.Random, index: int,
          broken: bool) -> dict[str, Any]:
    fn = _function(tool)
    name = str(fn.get("name"))
    found = fn.get("parameters")
    schema: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    args = arguments_for(schema, question, _words(name + " " + str(fn.get("description", ""))))
    if broken:
        args = _break(args, schema)
    return {"index": index, "id": _call_id(model, name, rng), "type": "function",
            "function": {"name": name, "arguments": json.dumps(args) if args or schema.get(
                "properties") else ""}}


def _call_id(model: CatalogModel, name: str, rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    if model.provider == "Mistral":
        return "".join(rng.choice(alphabet) for _ in range(9))
    if model.provider == "Google AI Studio":
        return f"tool_{name}_" + "".join(rng.choice(alphabet) for _ in range(20))
    return f"call_{rng.getrandbits(96):024x}"


def arguments_for(schema: Mapping[str, Any], question: str, tool_words: set[str]
                  ) -> dict[str, Any]:
    """Arguments for ``schema`` taken from the question, fitting the schema's types."""
    numbers = [float(n) for n in _NUMBER.findall(question)]
    listed = schema.get("properties")
    props: Mapping[str, Any] = listed if isinstance(listed, Mapping) else {}
    required = set(schema.get("required") or ())
    args: dict[str, Any] = {}
    for key, prop in props.items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = prop.get("type")
        kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
        if prop.get("enum"):
            named = [v for v in prop["enum"] if str(v).lower() in question.lower()]
            args[key] = named[0] if named else prop["enum"][0]
        elif kind in ("integer", "number") and (numbers or key in required):
            value = numbers.pop(0) if numbers else 1
            args[key] = int(value) if kind == "integer" else value
        elif kind == "string" and key in required:
            args[key] = _string_from(key, question, tool_words)
        elif kind == "boolean" and key in required:
            args[key] = False
        elif kind == "array" and key in required:
            args[key] = [int(n) if n.is_integer() else n for n in numbers] or [1]
        elif kind == "object" and key in required:
            args[key] = {}
    return args


def _string_from(key: str, question: str, tool_words: set[str]) -> str:
    if key.lower() in ("expression", "expr", "formula", "calculation"):
        found = _EXPRESSION.search(question)
        if found:
            text = " ".join(found.group(0).split()).replace("x", "*").replace("×", "*")
            return text.replace("÷", "/")
    quoted: list[str] = re.findall(r"[\"“']([^\"”']{1,60})[\"”']", question)
    if quoted:
        return quoted[0]
    words: list[str] = _WORD.findall(question)
    capital = [w for i, w in enumerate(words) if i > 0 and w[0].isupper()
               and w.lower() not in tool_words]
    if capital:
        return capital[0]
    plain = [w for w in words if w.lower() not in _STOP and w.lower() not in tool_words]
    return plain[-1] if plain else "it"


def _break(args: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments a careless model sends: a number spelled out, or a required field left out."""
    for key, value in args.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {**args, key: f"about {value}"}
    required = list(schema.get("required") or ())
    if required:
        return {k: v for k, v in args.items() if k != required[0]}
    return args


def answer_from_results(model_id: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """The reply after the tool results this turn: it says what each tool returned."""
    names: dict[str, str] = {}
    results: list[str] = []
    for message in _this_turn(messages):
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping):
                names[str(call.get("id"))] = str(_function(call).get("name", "tool"))
        if message.get("role") == "tool":
            text = " ".join(" ".join(content_texts(message.get("content"))).split())
            name = names.get(str(message.get("tool_call_id")), "the tool")
            results.append(f"{name} returned {text[:160]}")
    question = " ".join(user_text(messages).split())[:80]
    last = results[-1].split(" returned ", 1)[-1] if results else "nothing"
    return (f"[sandbox] Simulated answer from {model_id} to \"{question}\" using the tool "
            f"results: {'; '.join(results)}. So the answer is {last}.")


def stream_fragments(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``delta.tool_calls`` of each chunk: openers, then argument pieces, interleaved."""
    openers = [{"index": c["index"], "id": c["id"], "type": "function",
                "function": {"name": c["function"]["name"], "arguments": ""}} for c in calls]
    pieces = [_pieces(c["function"].get("arguments") or "") for c in calls]
    deltas = [[opener] for opener in openers]
    for round_ in range(max((len(p) for p in pieces), default=0)):
        for call, parts in zip(calls, pieces, strict=True):
            if round_ < len(parts):
                deltas.append([{"index": call["index"], "function": {"arguments": parts[round_]}}])
    return [{"role": "assistant", "content": None, "tool_calls": d} for d in deltas]


def _pieces(arguments: str) -> list[str]:
    if len(arguments) < 4:
        return [arguments] if arguments else []
    cuts = [0, len(arguments) // 3 + 1, 2 * len(arguments) // 3 - 1, len(arguments)]
    return [arguments[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if arguments[a:b]]
