"""Building chat-completion request bodies from messages and resolved call options.

Pure functions, so what a call sends is easy to read and test apart from how it retries or
records. Unset options are left out of the body; OpenRouter's defaults apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .attachments import DEFAULT_PDF_ENGINE, has_file_parts
from .options import CallOptions
from .validate import SchemaSpec

__all__ = ["build_body", "option_fields"]


def option_fields(options: CallOptions) -> dict[str, Any]:
    """The body fields other than ``model`` and ``messages`` that ``options`` set."""
    body: dict[str, Any] = {}
    if options.max_tokens is not None:
        body["max_tokens"] = int(options.max_tokens)
    if options.temperature is not None:
        body["temperature"] = float(options.temperature)
    if options.seed is not None:
        body["seed"] = int(options.seed)
    reasoning = options.reasoning_request
    if reasoning is not None:
        body["reasoning"] = reasoning
    if options.stream:
        body["stream"] = True
    if options.provider:
        body["provider"] = dict(options.provider)
    if options.tools:
        body["tools"] = [tool.spec() for tool in options.tools]
        if options.tool_choice is not None:
            body["tool_choice"] = tool_choice_body(options.tool_choice)
        if options.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = bool(options.parallel_tool_calls)
    return body


def tool_choice_body(choice: Any) -> Any:
    """``tool_choice`` as sent: a word as is, a tool's name as the function object."""
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return dict(choice) if isinstance(choice, Mapping) else choice


def build_body(model: str, messages: Sequence[Mapping[str, Any]], options: CallOptions,
               spec: SchemaSpec | None, *, structured: bool) -> dict[str, Any]:
    """The request for ``model``; with a schema, as ``response_format`` where the model
    supports structured outputs (and ``provider.require_parameters`` so no provider without
    them is chosen), else as an instruction appended to the last message."""
    body: dict[str, Any] = {"model": model, "messages": list(messages), **option_fields(options)}
    if has_file_parts(messages):  # attached files: the free PDF engine unless told otherwise
        body["plugins"] = [{"id": "file-parser",
                            "pdf": {"engine": options.pdf_engine or DEFAULT_PDF_ENGINE}}]
    if spec is None:
        return body
    if structured:
        body["response_format"] = spec.response_format()
        body["provider"] = {**body.get("provider", {}), "require_parameters": True}
    else:
        last = dict(messages[-1])
        content = last.get("content")
        instruction = spec.instruction()
        if isinstance(content, list):
            last["content"] = [*content, {"type": "text", "text": instruction}]
        else:
            last["content"] = f"{content or ''}\n\n{instruction}"
        body["messages"] = [*messages[:-1], last]
    return body
