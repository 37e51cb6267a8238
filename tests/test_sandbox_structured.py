"""Structured output: JSON that fits the schema, broken deterministically for unreliable models."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import jsonschema
import pytest

from openrouter_nb.sandbox import Sandbox, SandboxTransport, answers, sandbox_key
from openrouter_nb.sandbox.answers import sample_from_schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": 60},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
        "score": {"type": "number", "minimum": 0, "maximum": 10},
        "available": {"type": "boolean"},
        "genre": {"enum": ["drama", "comedy", "horror"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4},
        "director": {"$ref": "#/$defs/Person"},
        "sequel": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["title", "year", "score", "available", "genre", "tags", "director"],
    "additionalProperties": False,
    "$defs": {"Person": {"type": "object", "properties": {
        "name": {"type": "string"}, "born": {"type": "string", "format": "date"}},
        "required": ["name", "born"]}},
}
RF = {"type": "json_schema", "json_schema": {"name": "movie", "strict": True, "schema": SCHEMA}}


def _contents(model: str, n: int, seed: int = 0) -> list[str]:
    client = httpx.Client(transport=SandboxTransport(Sandbox(seed=seed, rpm=1000)),
                          base_url="http://t/api/v1",
                          headers={"Authorization": f"Bearer {sandbox_key()}"})
    body = {"model": model, "response_format": RF,
            "messages": [{"role": "user", "content": "Describe a classic film as JSON"}]}
    return [client.post("/chat/completions", json=body).json()["choices"][0]["message"]
            ["content"] for _ in range(n)]


def _valid(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), SCHEMA)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


@pytest.mark.parametrize("seed", range(25))
def test_sampler_fits_schema(seed: int) -> None:
    jsonschema.validate(sample_from_schema(SCHEMA, random.Random(seed)), SCHEMA)


def test_reliable_model_always_fits() -> None:
    assert all(_valid(c) for c in _contents("openai/gpt-oss-20b:free", 20))


def test_unreliable_model_sometimes_breaks_deterministically() -> None:
    first = _contents("deepseek/deepseek-chat-v3.1:free", 30, seed=4)
    assert first == _contents("deepseek/deepseek-chat-v3.1:free", 30, seed=4)
    broken = [c for c in first if not _valid(c)]
    assert 0 < len(broken) < len(first)
    assert len(set(first)) > 1  # a retry of the same request can come out differently
    fenced = [c for c in broken if c.startswith("```json")]
    for c in fenced:  # fences wrap valid JSON: stripping them is enough
        assert _valid(c.removeprefix("```json").removesuffix("```"))


def test_json_object_mode() -> None:
    client = httpx.Client(transport=SandboxTransport(), base_url="http://t/api/v1",
                          headers={"Authorization": f"Bearer {sandbox_key()}"})
    body = {"model": "openai/gpt-oss-20b:free", "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": "Give me JSON about owls"}]}
    data = json.loads(client.post("/chat/completions", json=body).json()
                      ["choices"][0]["message"]["content"])
    assert data["simulated"] is True and "owls" in data["topic"]


def test_a_schema_in_the_prompt_is_found_and_followed_as_chat_models_do() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    prompt = "Count.\n\nReply with JSON only, matching this JSON Schema:\n" + json.dumps(schema)
    assert answers.schema_in_prompt([{"role": "user", "content": prompt}]) == schema
    assert answers.schema_in_prompt([{"role": "user", "content": "a JSON Schema: {broken"}]) is None
    assert answers.schema_in_prompt([{"role": "user", "content": "plain {\"n\": 1}"}]) is None
    shapes = {answers.chat_json({"n": 1}, random.Random(seed)).split("{")[0] for seed in range(30)}
    assert shapes == {"", "```json\n", "Here is the JSON you asked for:\n\n"}
