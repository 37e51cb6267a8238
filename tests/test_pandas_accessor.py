"""``import openrouter_nb.pandas`` adds ``df.openrouter``: the same batch, the same ledger."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import openrouter_nb as orn
from openrouter_nb.session import Session

MODEL = "openai/gpt-oss-20b:free"
PAID = "google/gemma-3-27b-it"


def test_importing_the_package_does_not_register_the_accessor() -> None:
    code = ("import pandas as pd, openrouter_nb; "
            "print(hasattr(pd.DataFrame(), 'openrouter'));"
            "import openrouter_nb.pandas; print(hasattr(pd.DataFrame(), 'openrouter'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_ask_is_the_batch_and_resumes_from_the_ledger(session: Session) -> None:
    import openrouter_nb.pandas  # noqa: F401

    frame = pd.DataFrame({"text": ["great phone", "broke in a day", "fine"]})
    first = frame.openrouter.ask("Label: {text}", model=MODEL, out="label", progress=None)
    assert list(first.columns) == ["text", "label", "label_model", "label_status"]
    assert (first["label_status"] == "ok").all() and first["label"].str.contains("sandbox").all()
    sent = len(session.sandbox.requests)
    again = frame.openrouter.ask("Label: {text}", model=MODEL, out="label", progress=None)
    assert len(session.sandbox.requests) == sent  # every row came back from the ledger
    assert again["label"].tolist() == first["label"].tolist()
    direct = orn.batch(frame, "Label: {text}", model=MODEL, out="label", progress=None)
    assert direct.attrs["openrouter_batch"]["batch_id"] == again.attrs["openrouter_batch"]["batch_id"]


def test_ask_refuses_an_unknown_placeholder(session: Session) -> None:
    import openrouter_nb.pandas  # noqa: F401

    with pytest.raises(ValueError, match=r"\{txt\}, which is not a column"):
        pd.DataFrame({"text": ["a"]}).openrouter.ask("Label: {txt}", progress=None)
    assert session.sandbox.requests == []


def test_estimate_cost_on_a_ledger_frame(session: Session) -> None:
    import openrouter_nb.pandas  # noqa: F401

    session.ask("Say hello", model=MODEL)
    rows = orn.log()
    via_accessor = rows.openrouter.estimate_cost(PAID)
    direct = orn.estimate_cost(PAID, ledger=rows)
    assert via_accessor.total_usd == direct.total_usd > 0
