"""Python functions as tools: schemas from signatures, docstrings, Annotated and pydantic;
arguments checked before anything runs; the request body carries the declarations."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Literal, Optional

import pytest
from pydantic import BaseModel, Field

import openrouter_nb as orn
from openrouter_nb.options import CallOptions
from openrouter_nb.request import option_fields
from openrouter_nb.tools import MAX_RESULT_CHARS, Tool, as_tool, as_tools, parse_docstring


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    city: str = Field(description="the city")
    zip_code: Optional[str] = None  # noqa: UP045 - the Optional spelling is what we test


def everything(count: int, ratio: float, name: str, flag: bool, items: list[int],
               table: dict[str, float], maybe: int | None = None,
               unit: Literal["m", "km"] = "m", colour: Colour = Colour.RED,
               pair: tuple[int, str] = (1, "a"), loose=None) -> str:  # type: ignore[no-untyped-def]
    """Do everything at once.

    A second paragraph that is not the description.

    Args:
        count: how many
        ratio (float): a share,
            from 0 to 1
        name: who
    """
    return "ok"


def test_simple_types_defaults_and_docstring() -> None:
    spec = as_tool(everything).spec()
    assert spec["type"] == "function"
    fn = spec["function"]
    assert fn["name"] == "everything" and fn["description"] == "Do everything at once."
    params = fn["parameters"]
    props = params["properties"]
    assert params["required"] == ["count", "ratio", "name", "flag", "items", "table"]
    assert params["additionalProperties"] is False
    assert props["count"] == {"type": "integer", "description": "how many"}
    assert props["ratio"] == {"type": "number", "description": "a share, from 0 to 1"}
    assert props["name"] == {"type": "string", "description": "who"}
    assert props["flag"] == {"type": "boolean"}
    assert props["items"] == {"type": "array", "items": {"type": "integer"}}
    assert props["table"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["maybe"] == {"type": ["integer", "null"], "default": None}
    assert props["unit"] == {"type": "string", "enum": ["m", "km"], "default": "m"}
    assert props["colour"] == {"enum": ["red", "blue"]}  # an Enum default is not JSON: left out
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["loose"] == {"default": None}


def test_annotated_descriptions_and_the_decorator_override() -> None:
    @orn.tool(name="find_city", description="Look a city up.")
    def lookup(city: Annotated[str, "the city's name"],
               limit: Annotated[int, Field(description="rows at most")] = 3) -> str:
        """Ignored: the decorator's description wins."""
        return city

    assert isinstance(lookup, Tool) and lookup("Oslo") == "Oslo"  # still callable
    fn = lookup.spec()["function"]
    assert fn["name"] == "find_city" and fn["description"] == "Look a city up."
    assert fn["parameters"]["properties"] == {
        "city": {"type": "string", "description": "the city's name"},
        "limit": {"type": "integer", "description": "rows at most", "default": 3}}

    @orn.tool
    def bare(x: int) -> int:
        return x

    assert bare.name == "bare" and bare.description == ""


def test_pydantic_parameters_are_described_and_validated_into_the_model() -> None:
    seen: list[Address] = []

    def ship(address: Address, express: bool = False) -> str:
        """Ship a parcel.

        :param address: where to
        :param express: faster
        """
        seen.append(address)
        return address.city

    made = as_tool(ship)
    params = made.parameters
    assert params["properties"]["address"]["properties"]["city"]["description"] == "the city"
    assert params["properties"]["express"]["description"] == "faster"
    run = made.run(json.dumps({"address": {"city": "Lyon"}}))
    assert run.result == "Lyon" and run.error is None
    assert isinstance(seen[0], Address) and seen[0].city == "Lyon"
    bad = made.run(json.dumps({"address": {"zip_code": "1"}}))
    assert bad.error is not None and "'city' is a required property" in bad.error and not seen[1:]


class Line(BaseModel):
    sku: str
    qty: int


class Order(BaseModel):
    lines: list[Line]


def test_nested_models_keep_their_defs_at_the_root() -> None:
    def place(order: Order) -> int:
        return sum(line.qty for line in order.lines)

    made = as_tool(place)
    assert "Line" in made.parameters["$defs"]
    run = made.run(json.dumps({"order": {"lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 3}]}}))
    assert run.result == "5"
    assert "qty" in (made.run('{"order": {"lines": [{"sku": "a", "qty": "two"}]}}').error or "")


def test_numpy_docstrings() -> None:
    summary, params = parse_docstring("""Scale a value.

    Parameters
    ----------
    value : float
        The value.
    factor : int
        How much.
    """)
    assert summary == "Scale a value."
    assert params == {"value": "The value.", "factor": "How much."}


def test_arguments_are_checked_never_evaluated_and_errors_are_bounded() -> None:
    calls: list[int] = []

    def double(n: int) -> int:
        calls.append(n)
        return 2 * n

    made = as_tool(double)
    assert made.run('{"n": 21}').result == "42"
    assert "not valid JSON" in (made.run("__import__('os').system('x')").error or "")
    assert "'21' is not of type 'integer'" in (made.run('{"n": "21"}').error or "")
    assert "Additional properties" in (made.run('{"n": 1, "m": 2}').error or "")
    assert "required" in (made.run("{}").error or "")
    assert calls == [21]

    def boom(text: str) -> str:
        raise ValueError("x" * 5000)

    error = as_tool(boom).run('{"text": "a"}').error or ""
    assert error.startswith("boom raised ValueError: xxx") and len(error) < 600

    def huge() -> str:
        return "y" * 10_000

    result = as_tool(huge).run("").result or ""
    assert len(result) < MAX_RESULT_CHARS + 60 and result.endswith("characters in all]")


def test_bad_tools_are_refused_in_our_words() -> None:
    with pytest.raises(TypeError, match="list of functions"):
        as_tools("add")
    with pytest.raises(ValueError, match="two tools are named 'f'"):
        as_tools([orn.tool(lambda: 1, name="f"), orn.tool(lambda: 2, name="f")])
    with pytest.raises(ValueError, match="letters, digits"):
        as_tool(lambda: 1)  # "<lambda>" is not a tool name
    with pytest.raises(TypeError, match="cannot describe the type"):
        as_tool(_takes_a_set_of_bytes)


def _takes_a_set_of_bytes(x: bytes) -> None:
    return None


def test_options_put_tools_choice_and_parallel_in_the_body() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    options = CallOptions().replace(tools=[add], tool_choice="add", parallel_tool_calls=False,
                                    max_steps=3)
    body = option_fields(options)
    assert body["tools"][0]["function"]["name"] == "add"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert body["parallel_tool_calls"] is False
    assert option_fields(options.replace(tool_choice="required"))["tool_choice"] == "required"
    assert "tools" not in option_fields(CallOptions())
    with pytest.raises(ValueError, match="max_steps must be"):
        CallOptions().replace(max_steps=0)
    with pytest.raises(TypeError, match="Did you mean 'max_steps'"):
        CallOptions().replace(max_step=3)
