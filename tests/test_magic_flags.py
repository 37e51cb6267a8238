"""Magic flags are never abbreviated, a near miss is named, unknown placeholders warn."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.notebook.flags import did_you_mean
from openrouter_nb.session import Session


def test_prefix_of_a_flag_is_an_error_not_the_flag(ip: InteractiveShell,
                                                   session: Session) -> None:
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("openrouter", "--max-token 5", "Say hi.")
    assert str(caught.value) == ("unrecognized arguments: --max-token 5 "
                                 "(--max-token: did you mean --max-tokens?)")
    assert session.ledger.dataframe().empty  # nothing sent


def test_typo_gets_did_you_mean(ip: InteractiveShell, session: Session) -> None:
    with pytest.raises(UsageError, match=r"--temprature: did you mean --temperature\?"):
        ip.run_cell_magic("openrouter", "--temprature 0.2", "Say hi.")


def test_unrelated_flag_gets_no_guess() -> None:
    assert did_you_mean("unrecognized arguments: --zzz", ["--model", "--seed"]) == \
        "unrecognized arguments: --zzz"
    assert did_you_mean("argument --seed: invalid int value: 'x'", ["--seed"]) == \
        "argument --seed: invalid int value: 'x'"


def test_unknown_placeholder_warns_and_is_sent_as_written(ip: InteractiveShell,
                                                          session: Session) -> None:
    ip.user_ns["city"] = "Lyon"
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", "", "Weather in {city} for {undefined_name}?")
    assert cap.stderr == ("note: {undefined_name} is not a variable in the notebook, so the "
                          "prompt keeps it as written. Define it first to fill it in.\n")
    sent = session.sandbox.requests[-1].json["messages"][-1]["content"]
    assert sent == "Weather in Lyon for {undefined_name}?"


def test_known_placeholders_and_json_do_not_warn(ip: InteractiveShell, session: Session) -> None:
    ip.user_ns["city"] = "Lyon"
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", "", 'Weather in {city}; reply as {"t": 1} or {{x}}.')
    assert cap.stderr == ""
