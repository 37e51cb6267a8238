"""``{name}`` in ``%%openrouter`` cells takes only the user's own variables: never a dunder
name (``{__builtins__}`` would send ``<module 'builtins'>``), nor anything IPython keeps for
itself (``In``, ``Out``, ``_``, ``_i``, ``_7``, ``get_ipython``…)."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb._text import interpolate, is_dunder, is_ipython_name
from openrouter_nb.session import Session

NOT_THE_USERS = ["__builtins__", "__doc__", "__name__", "__builtin__", "__spec__", "In", "Out",
                 "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_dh", "_ih", "exit", "quit",
                 "get_ipython", "_1", "_2", "_i1", "_i2", "open"]


def sent_prompt(ip: InteractiveShell, session: Session, body: str) -> str:
    with capture_output():
        ip.run_cell_magic("openrouter", "", body)
    return session.sandbox.requests[-1].json["messages"][-1]["content"]


def test_a_cell_sends_ipythons_own_names_as_written(ip: InteractiveShell,
                                                    session: Session) -> None:
    with capture_output():
        for code in ("1 + 1", "'two'"):  # fills _, __, _1, _2, _i, _ii, _i1, _i2, Out
            ip.run_cell(code, store_history=True)
    assert ip.user_ns["_1"] == 2 and ip.user_ns["_i2"] == "'two'" and "__builtins__" in ip.user_ns
    ip.user_ns["topic"] = "SSE"
    body = " ".join("{" + name + "}" for name in NOT_THE_USERS) + " about {topic}"
    assert sent_prompt(ip, session, body) == body.replace("{topic}", "SSE")


def test_the_users_own_variables_are_used_whatever_their_name(ip: InteractiveShell,
                                                               session: Session) -> None:
    ip.user_ns.update(_private="p", __mangled="m", x_1="x", _x1="u", Input="i", open="door")
    body = "{_private} {__mangled} {x_1} {_x1} {Input} {open}"
    assert sent_prompt(ip, session, body) == "p m x u i door"  # open: reassigned by the user


def test_unknown_names_are_left_as_written(ip: InteractiveShell, session: Session) -> None:
    assert sent_prompt(ip, session, "{not_defined_anywhere} {__nope__}") == \
        "{not_defined_anywhere} {__nope__}"


@pytest.mark.parametrize("name", NOT_THE_USERS[:5] + ["__x__"])
def test_dunder_names_are_never_interpolated(name: str) -> None:
    assert is_dunder(name)
    assert interpolate("{" + name + "}", {name: "leak"}) == "{" + name + "}"
    assert interpolate("{" + name + "}", {name: "leak"}, {}) == "{" + name + "}"


@pytest.mark.parametrize("name", NOT_THE_USERS[5:-1] + ["_10", "_i10"])
def test_ipython_names_are_skipped_in_a_notebook_namespace_only(name: str) -> None:
    """With ``hidden`` (a notebook's namespace) IPython's names are skipped, even reassigned;
    without it (a batch's columns) a column may have any name."""
    assert is_ipython_name(name)
    assert interpolate("{" + name + "}", {name: "value"}, {}) == "{" + name + "}"
    assert interpolate("{" + name + "}", {name: "value"}) == "value"


@pytest.mark.parametrize("name", ["_private", "__mangled", "x_1", "_x1", "_i_", "ii", "Input"])
def test_ordinary_names_are_neither_dunder_nor_ipythons(name: str) -> None:
    assert not is_dunder(name) and not is_ipython_name(name)
    assert interpolate("{" + name + "}", {name: 7}, {}) == "7"
