"""Building chat-completion request bodies: messages, options, structured-output wiring.

Pure functions, so what the session sends is easy to read and test apart from how it
retries or records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .validate import SchemaSpec


def build_messages(prompt: str, system: str | None) -> list[dict[str, Any]]:
    """An optional system message, then the user's prompt."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return messages


def build_options(*, max_tokens: int | None, temperature: float | None, seed: int | None,
                  stream: bool, provider: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body fields other than ``model`` and ``messages``; unset ones are left out."""
    body: dict[str, Any] = {}
    if max_tokens is not None:
        body["max_tokens"] = int(max_tokens)
    if temperature is not None:
        body["temperature"] = float(temperature)
    if seed is not None:
        body["seed"] = int(seed)
    if stream:
        body["stream"] = True
    if provider:
        body["provider"] = dict(provider)
    return body


def build_body(model: str, messages: list[dict[str, Any]], options: Mapping[str, Any],
               spec: SchemaSpec | None, *, structured: bool) -> dict[str, Any]:
    """The request for ``model``; with a schema, as ``response_format`` where the model
    supports structured outputs (and ``provider.require_parameters`` so no provider without
    them is chosen), else as an instruction appended to the last message."""
    body = {"model": model, "messages": messages, **options}
    if spec is None:
        return body
    if structured:
        body["response_format"] = spec.response_format()
        body["provider"] = {**body.get("provider", {}), "require_parameters": True}
    else:
        last = messages[-1]
        body["messages"] = messages[:-1] + [
            {**last, "content": f"{last['content']}\n\n{spec.instruction()}"}]
    return body
