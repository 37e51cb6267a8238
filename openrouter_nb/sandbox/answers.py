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

__all__ = ["answer_text", "break_json", "chat_json", "count_images", "digest", "json_answer",
           "prompt_tokens", "sample_from_schema", "schema_in_prompt", "tokenize", "topic_of",
           "user_text"]

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


def _content_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p.get("text", "") for p in content
                if isinstance(p, Mapping) and p.get("type") == "text"]
    return []


def user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Text of the last user message ('' if none)."""
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return " ".join(_content_texts(msg.get("content")))
    return ""


def count_images(messages: Sequence[Mapping[str, Any]]) -> int:
    """Number of ``image_url`` parts in all messages."""
    return sum(1 for m in messages if isinstance(m.get("content"), list)
               for p in m["content"] if isinstance(p, Mapping) and p.get("type") == "image_url")


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """About 4/3 tokens per word of every message, plus 85 per image, at least 1."""
    words = sum(len(t.split()) for m in messages for t in _content_texts(m.get("content")))
    return max(1, round(words * 4 / 3) + 85 * count_images(messages))


def topic_of(messages: Sequence[Mapping[str, Any]], n_words: int = 8) -> str:
    """A few words of the first user message (the question, not a later re-ask), to echo."""
    first = next((m for m in messages if m.get("role") == "user"), None)
    words = re.sub(r"[\"`{}\[\]]", "", user_text([first] if first else messages)).split()
    text = " ".join(words[:n_words]).rstrip(".,;:!?")
    return text + ("..." if len(words) > n_words else "") if text else "your question"


def tokenize(text: str) -> list[str]:
    """Split text into word pieces (leading space kept, at most 8 chars) that join back."""
    pieces: list[str] = []
    for word in _TOKEN_RE.findall(text):
        pieces += [word[i:i + _MAX_PIECE] for i in range(0, len(word), _MAX_PIECE)]
    tail = text[len("".join(pieces)):]
    if tail:
        pieces.append(tail)
    return pieces


def answer_text(model: str, messages: Sequence[Mapping[str, Any]], rng: random.Random,
                n_tokens: int | None = None) -> list[str]:
    """Tokens of a plain-text simulated answer; exactly ``n_tokens`` tokens when given."""
    head = f"[sandbox] Simulated answer from {model} about \"{topic_of(messages)}\":"
    start, n = rng.randrange(len(_SENTENCES)), rng.randint(2, 4)
    body = [_SENTENCES[(start + i) % len(_SENTENCES)] for i in range(n)]
    text = " ".join([head, *body])
    tokens = tokenize(text)
    if n_tokens is not None:
        while len(tokens) < n_tokens:
            tokens.append(" " + _FILLER[len(tokens) % len(_FILLER)])
        tokens = tokens[:n_tokens]
    return tokens


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
