"""Python functions as tools: a JSON schema from the signature, checked arguments, a bounded run.

A function's signature, type hints and docstring become the OpenAI-style declaration
OpenRouter takes (reference/openrouter-api-messages.md §3.1)::

    {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}

``int``, ``float``, ``str``, ``bool``, ``list[...]``, ``tuple[...]``, ``dict[str, ...]``,
``Optional[...]``/``X | None``, ``Literal[...]``, enums and pydantic models are understood; a
parameter with a default is not required; ``Annotated[int, "the count"]`` (or a pydantic
``Field(description=...)``) and the docstring's ``Args:`` / ``:param x:`` / numpy sections
describe the parameters. ``@orn.tool(name=..., description=...)`` overrides the name or the
description.

Arguments from the model are untrusted: parsed with ``json`` (never ``eval``), validated
against the schema with ``jsonschema`` before the function runs, and only the functions the
user passed can run. A function that raises gives its error text back (bounded) instead.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import types
import typing
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._text import redact

__all__ = ["MAX_RESULT_CHARS", "Tool", "ToolRun", "as_tool", "as_tools", "schema_of", "tool"]

#: What a tool's result may send back to the model (characters); the rest is cut with a note.
MAX_RESULT_CHARS = 4000
#: A tool's error text sent back (characters).
MAX_ERROR_CHARS = 500
#: A result as the ledger and the trace keep it (characters).
SHORT_CHARS = 120
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SIMPLE = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _short(text: str, limit: int = SHORT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- types -> JSON Schema -----------------------------------------------------------------------
class _Schemas:
    """Builds parameter schemas; pydantic models' ``$defs`` are gathered at the root."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of(self, hint: Any) -> dict[str, Any]:
        if hint is inspect.Parameter.empty or hint is Any or hint is object:
            return {}
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            schema = self.of(args[0])
            description = _description_of(args[1:])
            return {**schema, "description": description} if description else schema
        if hint in _SIMPLE:
            return {"type": _SIMPLE[hint]}
        if hint is type(None):
            return {"type": "null"}
        if origin in (typing.Union, types.UnionType):
            return self._union(args)
        if origin is typing.Literal:
            kinds = {_SIMPLE.get(type(a)) for a in args} - {None}
            literal: dict[str, Any] = {"enum": list(args)}
            return {"type": kinds.pop(), **literal} if len(kinds) == 1 else literal
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"enum": [member.value for member in hint]}
        if hasattr(hint, "model_json_schema"):
            return self._pydantic(hint)
        return self._container(hint, origin, args)

    def _union(self, args: tuple[Any, ...]) -> dict[str, Any]:
        options = [self.of(a) for a in args if a is not type(None)]
        nullable = len(options) < len(args)
        if len(options) == 1 and nullable and isinstance(options[0].get("type"), str):
            return {**options[0], "type": [options[0]["type"], "null"]}
        if nullable:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}

    def _container(self, hint: Any, origin: Any, args: tuple[Any, ...]) -> dict[str, Any]:
        base = origin or hint
        if base in (list, set, frozenset, Sequence) or base is typing.Sequence:
            return {"type": "array", **({"items": self.of(args[0])} if args else {})}
        if base is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.of(args[0])}
            if args:
                return {"type": "array", "prefixItems": [self.of(a) for a in args],
                        "minItems": len(args), "maxItems": len(args)}
            return {"type": "array"}
        if base in (dict, Mapping) or base is typing.Mapping:
            value = {"additionalProperties": self.of(args[1])} if len(args) == 2 else {}
            return {"type": "object", **value}
        raise TypeError(f"cannot describe the type {hint!r} to a model: use int, float, str, "
                        "bool, list, dict, Literal, Optional, an Enum or a pydantic model.")

    def _pydantic(self, model: Any) -> dict[str, Any]:
        schema = dict(model.model_json_schema(ref_template="#/$defs/{model}"))
        self.defs.update(schema.pop("$defs", {}))
        return schema


def _description_of(metadata: Sequence[Any]) -> str | None:
    for item in metadata:
        if isinstance(item, str):
            return item
        text = getattr(item, "description", None)
        if isinstance(text, str) and text:
            return text
    return None


# -- docstrings ---------------------------------------------------------------------------------
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns?|Raises|Yields|"
                      r"Examples?|Notes?)\s*:?\s*$")
_GOOGLE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(the summary paragraph, parameter descriptions) from Google, numpy or Sphinx style."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section, current, indent = "summary", None, None
    for number, line in enumerate(lines):
        head = _SECTION.match(line)
        underlined = number + 1 < len(lines) and set(lines[number + 1].strip()) == {"-"}
        if head and (line.strip().endswith(":") or underlined):
            section, current, indent = head.group(1).lower(), None, None
            continue
        sphinx = _SPHINX.match(line)
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
        elif line.strip().startswith(":") or set(line.strip()) == {"-"}:
            current = None
        elif section == "summary":
            summary.append(line)
        elif section in ("args", "arguments", "parameters", "params") and line.strip():
            depth = len(line) - len(line.lstrip())
            indent = depth if indent is None else indent
            current = _param_line(line.strip(), params, current, depth > indent)
    text = "\n".join(summary).strip()
    return re.sub(r"\s*\n\s*", " ", text.split("\n\n")[0]).strip() if text else "", params


def _param_line(line: str, params: dict[str, str], current: str | None,
                continued: bool) -> str | None:
    if not continued:
        match = _GOOGLE.match(line)
        if match is not None and " : " not in line:
            name = match.group(1).lstrip("*")
            params[name] = match.group(2).strip()
            return name
        name = line.partition(" : ")[0].strip().lstrip("*")  # numpy: "name : type"
        if name.isidentifier():
            params[name] = ""
            return name
    if current is not None:
        params[current] = f"{params[current]} {line}".strip()
    return current


# -- the tool -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Tool:
    """A function the model may call: its declaration and how to run it safely."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    models: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    _checker: list[Any] = dataclasses.field(default_factory=list, repr=False)  # made once

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def spec(self) -> dict[str, Any]:
        """The declaration sent in the request's ``tools``."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    @classmethod
    def from_function(cls, function: Callable[..., Any], *, name: str | None = None,
                      description: str | None = None) -> Tool:
        if not callable(function):
            raise TypeError(f"a tool must be a function, not {type(function).__name__}.")
        name = name or str(getattr(function, "__name__", ""))
        if not _NAME.match(name):
            raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-' "
                             "(give one with @orn.tool(name=...)).")
        summary, docs = parse_docstring(inspect.getdoc(function))
        parameters, models = schema_of(function, docs)
        return cls(name, description if description is not None else summary, parameters,
                   function, models)

    def run(self, arguments: str) -> ToolRun:
        """Parse, check and run with the model's ``arguments`` (JSON text); never raises
        for what the model sent or what the function did."""
        try:
            values = json.loads(arguments or "{}")
        except ValueError as error:
            return ToolRun(self.name, arguments, error=f"the arguments are not valid JSON "
                           f"({error}); send a JSON object that fits the tool's parameters.")
        problem = check_arguments(values, self.parameters, self._validator())
        if problem is not None:
            return ToolRun(self.name, values, error=f"the arguments do not fit {self.name}'s "
                           f"parameters: {problem}. Call it again with arguments that fit.")
        try:
            result = self.function(**self._converted(values))
        except Exception as error:  # the model sees what went wrong, bounded
            text = f"{type(error).__name__}: {error}"
            return ToolRun(self.name, values, error=f"{self.name} raised "
                           f"{text[:MAX_ERROR_CHARS]}")
        return ToolRun(self.name, values, result=_result_text(result))

    def _validator(self) -> Any:
        if not self._checker:  # made on the first call
            import jsonschema

            self._checker.append(jsonschema.Draft202012Validator(self.parameters))
        return self._checker[0]

    def _converted(self, values: dict[str, Any]) -> dict[str, Any]:
        return {key: self.models[key].model_validate(value) if key in self.models
                and isinstance(value, Mapping) else value for key, value in values.items()}


def schema_of(function: Callable[..., Any], docs: Mapping[str, str] | None = None,
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the ``parameters`` JSON Schema of ``function``, its pydantic-model parameters)."""
    if docs is None:
        docs = parse_docstring(inspect.getdoc(function))[1]
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    schemas = _Schemas()
    properties: dict[str, Any] = {}
    required: list[str] = []
    models: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            continue
        hint = hints.get(name, param.annotation)
        schema = schemas.of(hint)
        if docs.get(name) and "description" not in schema:
            schema = {**schema, "description": docs[name]}
        if param.default is param.empty:
            required.append(name)
        elif _jsonable(param.default):
            schema = {**schema, "default": param.default}
        properties[name] = schema
        model = _model_in(hint)
        if model is not None:
            models[name] = model
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    parameters["additionalProperties"] = False
    if schemas.defs:
        parameters["$defs"] = schemas.defs
    return parameters, models


def _model_in(hint: Any) -> Any:
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(hint) if hasattr(a, "model_validate")]
        return found[0] if len(found) == 1 else None
    return hint if hasattr(hint, "model_validate") else None


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def check_arguments(values: Any, parameters: Mapping[str, Any],
                    validator: Any = None) -> str | None:
    """What is wrong with ``values`` for ``parameters`` (one short line), or ``None``."""
    import jsonschema

    if not isinstance(values, dict):
        return f"expected a JSON object, got {type(values).__name__}"
    validator = validator or jsonschema.Draft202012Validator(parameters)
    error = jsonschema.exceptions.best_match(validator.iter_errors(values))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"[:300]


def _result_text(result: Any) -> str:
    text: str
    if getattr(result, "shape", None) == () and callable(getattr(result, "item", None)):
        result = result.item()  # a numpy scalar (e.g. one cell of a DataFrame)
    if hasattr(result, "model_dump_json"):
        text = str(result.model_dump_json())
    elif isinstance(result, str):
        text = result
    elif hasattr(result, "to_string") and callable(result.to_string):
        text = str(result.to_string())  # a DataFrame or Series
    else:
        try:
            text = json.dumps(result, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(result)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"… [cut: {len(text):,} characters in all]"
    return text


@dataclass(frozen=True)
class ToolRun:
    """One tool call of a step: what the model asked and what came of it."""

    name: str
    arguments: Any  # the parsed arguments (or the raw text when it was not JSON)
    result: str | None = None
    error: str | None = None
    id: str | None = None

    @property
    def content(self) -> str:
        """What the ``tool`` message sends back."""
        return (self.result or "") if self.error is None else f"Error: {self.error}"

    def record(self) -> dict[str, Any]:
        """The ledger's form: name, arguments, a shortened result or error."""
        entry: dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        if self.error is not None:
            entry["error"] = _short(self.error)
        else:
            entry["result"] = _short(self.result or "")
        return entry

    def line(self) -> str:
        """``name(args) → result`` in one short line."""
        args = self.arguments if isinstance(self.arguments, str) else json.dumps(
            self.arguments, ensure_ascii=False)
        outcome = f"⚠ {self.error}" if self.error is not None else (self.result or "")
        return f"{self.name}({_short(args, 60)}) → {_short(redact(outcome), 80)}"  # shown


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Make ``function`` a :class:`Tool` (still callable), optionally renamed or redescribed.

    Use as ``@orn.tool`` or ``@orn.tool(name="lookup", description="...")``.
    """
    if function is not None:
        return Tool.from_function(function, name=name, description=description)

    def decorate(inner: Callable[..., Any]) -> Tool:
        return Tool.from_function(inner, name=name, description=description)

    return decorate


_described: weakref.WeakKeyDictionary[Any, Tool] = weakref.WeakKeyDictionary()


def as_tool(value: Any) -> Tool:
    """``value`` as a :class:`Tool` (a function is described from its signature once)."""
    if isinstance(value, Tool):
        return value
    try:
        found = _described.get(value)
    except TypeError:  # not weakly referenceable (a builtin, a partial...)
        return Tool.from_function(value)
    if found is None:
        found = _described[value] = Tool.from_function(value)
    return found


def as_tools(values: Any) -> tuple[Tool, ...]:
    """Tools from one function or a list of them; ``ValueError`` for a repeated name."""
    if callable(values):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise TypeError(f"tools must be a list of functions, not {type(values).__name__}.")
    made = tuple(as_tool(value) for value in values)
    names = [t.name for t in made]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two tools are named {repeated[0]!r}: rename one with "
                         "@orn.tool(name=...).")
    return made
