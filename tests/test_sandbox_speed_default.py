"""The in-process sandbox streams at a realistic speed in interactive use and answers at once
under tests, nbval and scripts; ``%openrouter sandbox --speed`` switches it, and help says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import openrouter_nb as orn
from openrouter_nb import speed
from openrouter_nb.sandbox.faults import FAULTS
from openrouter_nb.session import Session


@pytest.fixture(autouse=True)
def no_interactive_default() -> Iterator[None]:
    yield
    speed.set_interactive_default(None)


def test_the_rule() -> None:
    assert speed.default_speed({}) == "instant"  # a script
    speed.set_interactive_default("realistic")  # what %load_ext does with live display
    assert speed.default_speed({}) == "realistic"
    assert speed.default_speed({"PYTEST_CURRENT_TEST": "t.py::t"}) == "instant"
    assert speed.default_speed({speed.SPEED_ENV: "instant"}) == "instant"
    speed.set_interactive_default(None)
    assert speed.default_speed({speed.SPEED_ENV: " Realistic "}) == "realistic"
    with pytest.raises(ValueError, match="OPENROUTER_NB_SANDBOX_SPEED must be 'instant' or "
                                         "'realistic', not 'fast'"):
        speed.default_speed({speed.SPEED_ENV: "fast"})


def test_load_ext_sets_realistic_only_with_live_display(monkeypatch: pytest.MonkeyPatch,
                                                        session: Session) -> None:
    for display, expected in (("live", "realistic"), ("final", "instant")):
        monkeypatch.setenv("OPENROUTER_NB_STREAM_DISPLAY", display)
        monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "openrouter_nb")
        ip.run_line_magic("reload_ext", "openrouter_nb")
        assert speed.default_speed() == expected
        InteractiveShell.clear_instance()


def test_sessions_take_the_default_and_options_override(
        make_session: Callable[..., Session], monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_session().sandbox.speed == "instant"
    monkeypatch.setenv(speed.SPEED_ENV, "realistic")
    assert make_session().sandbox.speed == "realistic"
    chosen = make_session(sandbox_options={"speed": "instant"})
    assert chosen.sandbox.speed == "instant"


KERNEL = r"""
import json
from IPython.core.interactiveshell import InteractiveShell
import openrouter_nb as orn
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "openrouter_nb")
print(json.dumps(orn.get_session().sandbox.speed))
"""


@pytest.mark.parametrize(("display", "expected"), [("live", "realistic"), ("final", "instant")])
def test_an_interactive_shell_outside_pytest(tmp_path: object, display: str,
                                             expected: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_CURRENT_TEST", speed.SPEED_ENV)}
    env.update(OPENROUTER_NB_HOME=str(tmp_path), OPENROUTER_NB_SANDBOX="1",
               OPENROUTER_NB_STREAM_DISPLAY=display)
    done = subprocess.run([sys.executable, "-c", KERNEL], env=env, check=True, timeout=120,
                          capture_output=True, text=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


def line(ip: InteractiveShell, text: str) -> str:
    with capture_output() as cap:
        ip.run_line_magic("openrouter", text)
    return str(cap.stdout)


def test_the_speed_command(ip: InteractiveShell, session: Session) -> None:
    assert session.sandbox is not None
    assert line(ip, "sandbox --speed realistic").endswith("; speed: realistic\n")
    assert session.sandbox.speed == "realistic"
    # kept by the sessions derived from it (sandbox on, profiles, record, replay)
    assert "speed: realistic" in line(ip, "sandbox on")
    derived = orn.get_session()
    assert derived is not session and derived.sandbox is not None
    assert derived.sandbox.speed == "realistic"
    assert "speed: instant" in line(ip, "sandbox on --speed=instant")
    assert orn.get_session().sandbox.speed == "instant"
    said = line(ip, "sandbox --speed fast")
    assert said == ("%openrouter sandbox --speed: The sandbox speed must be 'instant' or "
                    "'realistic', not 'fast'.\n")
    orn.get_session().close()
    derived.close()


def test_help_names_speed_and_faults(ip: InteractiveShell) -> None:
    text = line(ip, "help")
    assert "%openrouter sandbox on|off [--speed instant|realistic]" in text
    assert "OPENROUTER_NB_SANDBOX_SPEED" in text
    assert 'sandbox.queue_fault("NAME")' in text and "%openrouter sandbox faults" in text
    listing = line(ip, "sandbox faults")
    assert all(name in listing for name in FAULTS)
    assert "X-Sandbox-Fault" in listing
