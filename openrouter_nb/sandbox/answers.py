"""Deterministic simulated answers: text that says it is simulated, JSON fitting a schema.

Everything here is a pure function of its inputs and a ``random.Random`` the caller seeds, so
the same seed and request give the same answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .history import previous_question, topic_of, turn_of, user_text

__all__ = ["answer_head", "answer_text", "break_json", "chat_json", "digest", "json_answer",
           "reasoning_text", "sample_from_schema", "schema_in_prompt", "tokenize"]

_SENTENCES = (
    "In short, the key idea is to start from the basics and build up step by step.",
    "A good first move is to state the question precisely and list what is known.",
    "Then compare the options, weigh their costs, and keep the simplest one that works.",
    "Check each assumption against a small example before relying on it.",
    "This text was generated offline by the openrouter_nb sandbox, so no model read your "
    "prompt.",
    "Use it to test code paths, timing and error handling rather than facts.",
    "A real model would give a more specific reply, with examples and caveats.",
    "When in doubt, ask a narrower follow-up question.",
)
_FILLER = " ".join(_SENTENCES).split()
_TOKEN_RE = re.compile(r"\s*\S+")
_MAX_PIECE = 8


def digest(*parts: object) -> int:
    """A stable 64-bit integer from any JSON-able parts (for seeding ``random.Random``)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


def tokenize(text: str) -> list[str]:
    """Split text into word pieces (leading space kept, at most 8 chars) that join back."""
    pieces: list[str] = []
    for word in _TOKEN_RE.findall(text):
        pieces += [word[i:i + _MAX_PIECE] for i in range(0, len(word), _MAX_PIECE)]
    tail = text[len("".join(pieces)):]
    if tail:
        pieces.append(tail)
    return pieces


def _pad(tokens: list[str], n_tokens: int, filler: Sequence[str]) -> list[str]:
    """``tokens`` cut or padded (cycling ``filler`` words) to exactly ``n_tokens``."""
    tokens = list(tokens)
    while len(tokens) < n_tokens:
        tokens.append(" " + filler[len(tokens) % len(filler)])
    return tokens[:n_tokens]


def answer_head(model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """The first line of a simulated answer; from turn 2 on it names the turn and quotes the
    previous question, so the answer visibly depends on the history that was sent."""
    previous = previous_question(messages)
    if previous is None:
        return f"[sandbox] Simulated answer from {model} about \"{topic_of(messages)}\":"
    return (f"[sandbox] Simulated answer from {model} about "
            f"\"{topic_of(messages, latest=True)}\" (turn {turn_of(messages)} — earlier "
            f"you asked: \"{previous}\"):")


def answer_text(model: str, messages: Sequence[Mapping[str, Any]], rng: random.Random,
                n_tokens: int | None = None) -> list[str]:
    """Tokens of a plain-text simulated answer; exactly ``n_tokens`` tokens when given."""
    start, n = rng.randrange(len(_SENTENCES)), rng.randint(2, 4)
    body = [_SENTENCES[(start + i) % len(_SENTENCES)] for i in range(n)]
    tokens = tokenize(" ".join([answer_head(model, messages), *body]))
    return tokens if n_tokens is None else _pad(tokens, n_tokens, _FILLER)


_THOUGHTS = (
    "First, recall what the key terms mean.",
    "Let me restate the question in my own words.",
    "What would a small example show?",
    "Wait, check that assumption again before relying on it.",
    "There may be an edge case worth a caveat.",
    "Compare two ways of answering and keep the clearer one.",
    "The reply should be short, concrete and in plain words.",
    "Hmm, is anything missing?",
)
_THOUGHT_FILLER = " ".join(_THOUGHTS).split()


def reasoning_text(model: str, messages: Sequence[Mapping[str, Any]], n_tokens: int,
                   seed: int, effort: str, *, summary: bool = False) -> list[str]:
    """Exactly ``n_tokens`` tokens of simulated thinking (a summary of it with ``summary``),
    labelled as simulated; from turn 2 on it recalls the previous question."""
    if n_tokens <= 0:
        return []
    topic = topic_of(messages, latest=True)
    kind = "reasoning summary" if summary else "reasoning"
    parts = [f"**Thinking about {topic}**\n\n" if summary else "",
             f"[sandbox] Simulated {kind} of {model} ({effort} effort). "
             f"The user asks about \"{topic}\"."]
    previous = previous_question(messages)
    if previous is not None:
        parts.append(f" This is turn {turn_of(messages)}; earlier the user asked: "
                     f"\"{previous}\".")
    start = random.Random(seed).randrange(len(_THOUGHTS))
    parts += [" " + _THOUGHTS[(start + i) % len(_THOUGHTS)] for i in range(len(_THOUGHTS))]
    return _pad(tokenize("".join(parts)), n_tokens, _THOUGHT_FILLER)


# --- structured output -------------------------------------------------------------------

def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return _resolve(node, root)
    return schema


def _string_for(name: str, schema: Mapping[str, Any], rng: random.Random, topic: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "date-time":
        return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z"
    if fmt == "email":
        return f"{name or 'user'}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{name or 'item'}"
    text = f"{name.replace('_', ' ')} about {topic}" if name else f"simulated {topic}"
    lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
    text = text.ljust(lo, ".")
    return text[: int(hi)] if hi is not None else text


def sample_from_schema(schema: Mapping[str, Any], rng: random.Random, topic: str = "the topic",
                       root: Mapping[str, Any] | None = None, name: str = "") -> Any:
    """A value that validates against ``schema`` (a practical JSON Schema subset)."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(list(schema["enum"]))
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if _resolve(o, root).get("type") != "null"]
        if options:
            return sample_from_schema(options[0], rng, topic, root, name)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties", {})
        return {k: sample_from_schema(v, rng, topic, root, k) for k, v in props.items()}
    if typ == "array":
        lo = int(schema.get("minItems", 1 if rng.random() < 0.5 else 2))
        n = max(lo, min(int(schema.get("maxItems", 3)), 2))
        return [sample_from_schema(schema.get("items", {}), rng, topic, root, name)
                for _ in range(n)]
    if typ in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        hi = schema.get("maximum", schema.get("exclusiveMaximum", lo + 100))
        lo_i = int(lo) + (1 if "exclusiveMinimum" in schema else 0)
        hi_i = max(lo_i, int(hi) - (1 if "exclusiveMaximum" in schema else 0))
        value = rng.randint(lo_i, hi_i)
        return value if typ == "integer" else value + 0.5 * (value < hi_i)
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "null":
        return None
    return _string_for(name, schema, rng, topic)


def json_answer(response_format: Mapping[str, Any], model: str, topic: str,
                rng: random.Random) -> Any:
    """The JSON value a model returns for ``response_format`` (json_schema or json_object)."""
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if isinstance(schema, Mapping):
            return sample_from_schema(schema, rng, topic)
    return {"topic": topic, "answer": f"[sandbox] simulated JSON answer from {model}",
            "simulated": True}


def schema_in_prompt(messages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The JSON Schema written into the last user message ("... JSON Schema: {...}"), if any:
    what a client does for a model without ``response_format`` support."""
    text = user_text(messages)
    at = text.lower().rfind("json schema")
    start = text.find("{", at) if at != -1 else -1
    if start == -1:
        return None
    try:
        schema, _end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return schema if isinstance(schema, dict) and ("properties" in schema or "type" in schema) \
        else None


def chat_json(value: Any, rng: random.Random) -> str:
    """``value`` as a chat model writes JSON it was asked for in the prompt: bare, in a code
    fence, or after a lead-in sentence (whatever the prompt said about fences)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return rng.choice((text, "```json\n" + text + "\n```",
                       "Here is the JSON you asked for:\n\n" + text))


def break_json(value: Any, schema: Mapping[str, Any] | None, rng: random.Random) -> str:
    """Render ``value`` the way an unreliable model might: fenced, missing a field, or cut."""
    mode = rng.choice(("fence", "missing", "truncated"))
    if mode == "fence":
        return "```json\n" + json.dumps(value, indent=2, ensure_ascii=False) + "\n```"
    if mode == "missing" and isinstance(value, dict) and value:
        required = list((schema or {}).get("required", [])) or list(value)
        victim = next((k for k in required if k in value), None)
        broken = {k: v for k, v in value.items() if k != victim}
        return json.dumps(broken, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False)
    return text[: max(1, len(text) // 2)]
