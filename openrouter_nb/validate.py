"""Structured output: a schema (JSON Schema dict or pydantic class), JSON extraction, validation.

Models wrap JSON in code fences, add a sentence before it, or break it; ``extract_json``
takes the first JSON value out of such text, and ``SchemaSpec.check`` validates it with
jsonschema (dict schemas) or pydantic (model classes). The error text is short enough to
send back to the model when re-asking.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._text import shorten

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?```", re.DOTALL)
_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Validation:
    ok: bool
    data: Any = None
    error: str | None = None


@dataclass(frozen=True)
class SchemaSpec:
    """A schema ready to send (``schema``, ``name``) and to check answers against."""

    name: str
    schema: dict[str, Any]
    _check: Callable[[Any], Any]

    @classmethod
    def of(cls, schema: Any, name: str | None = None) -> SchemaSpec:
        """From a JSON Schema dict or a pydantic ``BaseModel`` subclass."""
        if isinstance(schema, SchemaSpec):
            return schema
        if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
            model: Any = schema  # a pydantic model class (pydantic is not a dependency)
            json_schema = model.model_json_schema()
            return cls(_clean_name(name or model.__name__), json_schema,
                       lambda value: model.model_validate(value))
        if isinstance(schema, dict):
            try:
                import jsonschema
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise ImportError("Validating a JSON Schema needs jsonschema: "
                                  "pip install jsonschema") from exc
            validator_class = jsonschema.validators.validator_for(schema)
            validator_class.check_schema(schema)
            validator = validator_class(schema)

            def check(value: Any) -> Any:
                error = jsonschema.exceptions.best_match(validator.iter_errors(value))
                if error is not None:
                    raise ValueError(_describe_jsonschema_error(error))
                return value

            title = schema.get("title") if isinstance(schema.get("title"), str) else None
            return cls(_clean_name(name or title or "answer"), schema, check)
        raise TypeError("A schema is a JSON Schema dict or a pydantic model class, "
                        f"not {type(schema).__name__}.")

    def response_format(self) -> dict[str, Any]:
        """The ``response_format`` OpenRouter takes for this schema."""
        # Strict mode (OpenAI-style providers) rejects schemas that allow extra properties;
        # ask for it only where the schema already forbids them.
        strict = self.schema.get("additionalProperties") is False
        return {"type": "json_schema",
                "json_schema": {"name": self.name, "strict": strict, "schema": self.schema}}

    def instruction(self) -> str:
        """For models without structured outputs: say it in the prompt instead."""
        return ("Reply with JSON only, no prose and no code fences, matching this JSON Schema:\n"
                + json.dumps(self.schema, indent=1))

    def check(self, text: str) -> Validation:
        try:
            value = extract_json(text)
        except ValueError as exc:
            return Validation(False, error=str(exc))
        try:
            return Validation(True, data=self._check(value))
        except Exception as exc:  # pydantic.ValidationError, ValueError from jsonschema
            return Validation(False, error=shorten(str(exc), 300))


def extract_json(text: str) -> Any:
    """The JSON value in ``text``: whole, inside a code fence, or the first {...} / [...]."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for opener in "{[":
        start = text.find(opener)
        if start != -1:
            candidates.append(text[start:].strip())
    decoder = json.JSONDecoder()
    for candidate in candidates:
        if not candidate:
            continue
        try:
            value, _ = decoder.raw_decode(candidate)
            return value
        except ValueError:
            continue
    raise ValueError("The answer is not valid JSON" + (
        " (it looks cut off)" if text.strip().startswith(("{", "```")) else ""))


def _describe_jsonschema_error(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    return shorten(f"at {where}: {error.message}", 300)


def _clean_name(name: str) -> str:
    return _NAME_OK.sub("_", name)[:64] or "answer"
