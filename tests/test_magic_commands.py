"""%openrouter profile / cost / record / replay, and %%openrouter --allow-sensitive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.session import Session, get_session, set_session

from .test_magics import all_text

SECRET = "sk-or-v1-" + "ef" * 32  # built at run time


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENROUTER_NB_HOME", str(tmp_path / "home"))
    old = set_session(Session(home=tmp_path / "home", sandbox=True, sleep=lambda _s: None))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "openrouter_nb")
    yield shell
    InteractiveShell.clear_instance()
    set_session(old)


def run(ip: InteractiveShell, line: str, cell: str | None = None) -> tuple[object, str]:
    with capture_output() as cap:
        result = (ip.run_line_magic("openrouter", line) if cell is None
                  else ip.run_cell_magic("openrouter", line, cell))
    return result, all_text(cap)


def test_allow_sensitive(ip: InteractiveShell) -> None:
    _, blocked = run(ip, "", f"Why is {SECRET} rejected?")
    assert "blocked_sensitive" in blocked and "--allow-sensitive" in blocked
    assert SECRET not in blocked
    sandbox = get_session().sandbox
    assert not [r for r in sandbox.requests if r.path.endswith("/chat/completions")]
    _, sent = run(ip, "--allow-sensitive", f"Why is {SECRET} rejected?")
    assert "sandbox: simulated answer" in sent
    assert len([r for r in sandbox.requests if r.path.endswith("/chat/completions")]) == 1


def test_profile_lists_and_switches(ip: InteractiveShell, tmp_path: Path) -> None:
    _, empty = run(ip, "profile")
    assert "No profiles" in empty
    (tmp_path / "openrouter_nb.toml").write_text(
        '[profiles.dev]\nmodel = "google/gemma-3-27b-it:free"\nbudget = 5\nsandbox = true\n')
    _, listed = run(ip, "profile")
    assert "profile 'dev': model google/gemma-3-27b-it:free" in listed
    _, switched = run(ip, "profile dev")
    assert "mode: sandbox" in switched
    assert get_session().model == "google/gemma-3-27b-it:free" and get_session().budget == 5
    _, missing = run(ip, "profile nope")
    assert "No profile 'nope'" in missing


def test_cost(ip: InteractiveShell) -> None:
    run(ip, "-m google/gemma-3-27b-it:free", "hello")
    frame, text = run(ip, "cost google/gemma-3-27b-it:free")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
    assert "priced as google/gemma-3-27b-it" in text and "per 1,000 calls" in text
    _, unknown = run(ip, "cost nobody/nothing")
    assert "not in the model catalog" in unknown
    _, usage = run(ip, "cost")
    assert "usage: %openrouter cost MODEL" in usage


def test_record_then_replay(ip: InteractiveShell, tmp_path: Path) -> None:
    cassette = tmp_path / "lesson.jsonl"
    _, started = run(ip, f"record {cassette}")
    assert "recording every exchange" in started
    _, first = run(ip, "-m google/gemma-3-27b-it:free --no-stream", "Tell me about caching")
    run(ip, "record off")
    assert cassette.exists() and "Bearer" not in cassette.read_text()
    _, replaying = run(ip, f"replay {cassette}")
    assert "answers come from the cassette" in replaying
    _, again = run(ip, "-m google/gemma-3-27b-it:free --no-stream", "Tell me about caching")
    assert "replay: recorded answer" in again
    assert first.split("google/gemma-3-27b-it:free ·")[0] == again.split(
        "google/gemma-3-27b-it:free ·")[0]  # the same answer text
    _, missing = run(ip, "--no-stream", "Something never recorded")
    assert "replay_miss" in missing and "holds no answer" in missing
    _, stopped = run(ip, "replay off")
    assert "replay stopped" in stopped and get_session().mode == "sandbox"
    _, nofile = run(ip, f"replay {tmp_path / 'none.jsonl'}")
    assert "No replay cassette" in nofile
