"""Hostile and careless inputs at every public entry point: a clear error in our words (what
was given, what is expected), never a traceback from inside httpx, sqlite or pandas, and
nothing sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import openrouter_nb as orn
from openrouter_nb.session import Session

PLAIN = "meta-llama/llama-3.3-70b-instruct:free"

# (what is called, the exception class, a phrase of the message)
CASES: list[tuple[str, Callable[[Session], Any], type[Exception], str]] = [
    ("prompt is a number", lambda s: s.ask(123), TypeError, "prompt must be text"),
    ("prompt is None", lambda s: s.ask(None), TypeError, "prompt must be text"),
    ("prompt is empty", lambda s: s.ask("  \n"), orn.BadRequestError, "prompt is empty"),
    ("model is a number", lambda s: s.ask("hi", 123), TypeError, "model must be a model id"),
    ("model has no vendor", lambda s: s.ask("hi", "gpt"), ValueError, "model must be a model id"),
    ("fallback holds a number", lambda s: s.ask("hi", fallback=["a/b:free", 7]), TypeError,
     "fallback must be a list of model ids"),
    ("system is a number", lambda s: s.ask("hi", system=123), TypeError, "system must be text"),
    ("max_tokens negative", lambda s: s.ask("hi", max_tokens=-5), ValueError,
     "max_tokens must be a whole number above 0"),
    ("max_tokens is True", lambda s: s.ask("hi", max_tokens=True), TypeError, "max_tokens"),
    ("temperature is NaN", lambda s: s.ask("hi", temperature=float("nan")), ValueError,
     "temperature must be a number from 0 to 2"),
    ("temperature is text", lambda s: s.ask("hi", temperature="hot"), TypeError, "temperature"),
    ("retries huge", lambda s: s.ask("hi", retries=10**9), ValueError, "retries"),
    ("timeout zero", lambda s: s.ask("hi", timeout=0), ValueError, "timeout"),
    ("provider is a list", lambda s: s.ask("hi", provider=["x"]), TypeError, "provider"),
    ("headers not text", lambda s: s.ask("hi", headers={"X": 1}), ValueError, "headers"),
    ("a typo in an option", lambda s: s.ask("hi", temprature=1), TypeError,
     "Did you mean 'temperature'"),
    ("reasoning nonsense", lambda s: s.ask("hi", reasoning="loud"), ValueError,
     "reasoning='loud' is not understood"),
    ("lone surrogate", lambda s: s.ask("hi \ud800 there"), orn.BadRequestError,
     "lone surrogate (U+D800)"),
    ("four models", lambda s: s.ask("hi", PLAIN, fallback=["a/b", "c/d", "e/f"]),
     orn.BadRequestError, "At most 3 models"),
    ("compare with a string", lambda s: s.compare("hi", PLAIN), TypeError,
     "models must be a list of model ids"),
    ("compare with nothing", lambda s: s.compare("hi", []), ValueError, "at least one model"),
    ("batch on a list", lambda s: s.batch([1, 2], "x {a}"), TypeError,
     "batch needs a pandas DataFrame"),
    ("batch without a template", lambda s: s.batch(pd.DataFrame({"a": [1]}), None), TypeError,
     "prompt template"),
    ("batch with an unknown column", lambda s: s.batch(pd.DataFrame({"a": [1]}), "{b}"),
     ValueError, "is not a column"),
    ("chat with a number", lambda s: s.chat(PLAIN).ask(42), TypeError, "prompt must be text"),
    ("chat with a bad option", lambda s: s.chat(PLAIN, histroy=2), TypeError,
     "Did you mean 'history'"),
    ("chat history negative", lambda s: s.chat(PLAIN, history=-1), ValueError, "history"),
    ("resume unknown", lambda s: s.chat(resume="never-seen"), KeyError, "No conversation"),
    ("session with a typo", lambda s: Session(sandbox=True, modle=PLAIN), TypeError,
     "Did you mean 'model'"),
    ("session home is a number", lambda s: Session(sandbox=True, home=5), TypeError,
     "home must be a path"),
]


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_hostile_input_gets_a_clear_error_and_sends_nothing(
        name: str, make_session: Callable[..., Session]) -> None:
    _, call, error_class, phrase = next(case for case in CASES if case[0] == name)
    session = make_session()
    with pytest.raises(error_class) as info:
        call(session)
    assert phrase in str(info.value)
    assert "Traceback" not in str(info.value)
    sent = [r for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert sent == []


def test_the_table_is_large() -> None:
    assert len(CASES) >= 30
