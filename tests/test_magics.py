"""The magics, driven through a headless InteractiveShell (and once through a real kernel)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb import config
from openrouter_nb._text import interpolate
from openrouter_nb.answer import Answer
from openrouter_nb.notebook.magics import OpenRouterMagics
from openrouter_nb.notebook.widgets import KeyEntry, quota_meter
from openrouter_nb.session import Session, get_session, set_session


def ask(ip: InteractiveShell, body: str, line: str = "") -> Any:
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", line, body)
    return cap


def all_text(cap: Any) -> str:
    parts = [cap.stdout, cap.stderr]
    for out in cap.outputs:
        parts += [str(v) for v in out.data.values()]
    return "\n".join(parts)


def sent_prompt(session: Session) -> str:
    return session.sandbox.requests[-1].json["messages"][-1]["content"]


def test_free_router_footer_names_served_model(ip: InteractiveShell, session: Session) -> None:
    cap = ask(ip, "Explain SSE in one sentence")
    final = cap.outputs[-1].data
    served = session.ledger.rows()[-1]["served_model"]
    assert served and served != "openrouter/free"
    for mime in ("text/plain", "text/html"):
        assert f"openrouter/free → {served}" in final[mime]
        assert "sandbox: simulated answer" in final[mime]
    assert "Traceback" not in all_text(cap)


BRACES = [
    'Return JSON like {"name": "Ada", "tags": ["x", "y"], "n": {"a": 1}}',
    "config = {'model': 'x', 'retries': {'max': 2}}\nprint(config)",
    "Format with f'{x:>3}' and f'{x!r}' and {x.attr} and {x[0]}",
    "Escaped {{x}} and {{}} and empty {} and positional {1} and {0:.2f}",
    "def f():\n    return {k: v for k, v in {}.items()}",
    "Unknown {not_defined_anywhere} stays",
]


@pytest.mark.parametrize("body", BRACES)
def test_braces_reach_the_model_unchanged(ip: InteractiveShell, session: Session,
                                          body: str) -> None:
    ip.user_ns["x"] = 7
    ask(ip, body)
    assert sent_prompt(session) == body


def test_variable_interpolates(ip: InteractiveShell, session: Session) -> None:
    ip.user_ns.update(topic="SSE", n=3)
    ask(ip, 'Explain {topic} in {n} lines, as {"json": {topic}} with {{topic}}')
    assert sent_prompt(session) == 'Explain SSE in 3 lines, as {"json": SSE} with {{topic}}'


def test_interpolate_skips_ipython_hidden_names() -> None:
    hidden = {"In": [], "_": None}
    ns = {**hidden, "Out": {}, "name": "x"}
    assert interpolate("{In} {_} {name} {Out}", ns, hidden) == "{In} {_} x {Out}"


def test_out_stores_answer(ip: InteractiveShell, session: Session) -> None:
    ask(ip, "Say hi", "--out reply -m openrouter/free --max-tokens 50 --temperature 0.2 --seed 3")
    reply = ip.user_ns["reply"]
    assert isinstance(reply, Answer)
    row = session.ledger.rows()[-1]
    assert reply.call_id == row["call_id"] and reply.text == row["response"]
    body = session.sandbox.requests[-1].json
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (50, 0.2, 3)


def test_system_and_fallback_flags(ip: InteractiveShell, session: Session) -> None:
    ask(ip, "Hi", '--system "Be terse." --fallback a/b:free,c/d:free -m x/y:free --retries 0')
    body = session.sandbox.requests[-1].json
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}


@pytest.mark.parametrize("fault,kind", [("rate_limit_day", "rate_limit_day"),
                                        ("auth", "auth")])
def test_error_shows_clean_message(ip: InteractiveShell, session: Session, fault: str,
                                   kind: str) -> None:
    session.sandbox.queue_fault(fault)
    cap = ask(ip, "Hello")
    assert len(cap.outputs) == 1  # final-only mode (conftest): one display, the error
    data = cap.outputs[0].data
    row = session.ledger.rows()[-1]
    assert row["status"] == "error" and row["error_kind"] == kind
    assert f"({kind})" in data["text/plain"] and row["call_id"] in data["text/plain"]
    assert f"OpenRouter error: {kind}" in data["text/html"]
    assert "attempt" in data["text/plain"]
    assert "Traceback" not in all_text(cap) and not cap.stderr


def test_bad_model_id(ip: InteractiveShell, session: Session) -> None:
    cap = ask(ip, "Hello", "-m not-a/model:free")
    assert "model_unavailable" in cap.outputs[-1].data["text/plain"]
    assert session.ledger.rows()[-1]["error_kind"] == "model_unavailable"


def test_unexpected_exceptions_propagate(ip: InteractiveShell, session: Session,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Answer:
        raise ValueError("a bug")

    monkeypatch.setattr(session, "ask", broken)
    with pytest.raises(ValueError, match="a bug"):
        ask(ip, "Hello")


def test_bad_flag_is_a_usage_error(ip: InteractiveShell) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ask(ip, "Hello", "--format html")


def test_cell_magic_help_lists_flags() -> None:
    doc = OpenRouterMagics.openrouter_cell.__doc__ or ""
    for flag in ("--model MODEL", "--max-tokens N", "--fallback M1,M2", "--out NAME",
                 "--format {markdown,text,json,code}", "--no-stream", "%%openrouter"):
        assert flag in doc


def test_no_stream_sends_json(ip: InteractiveShell, session: Session) -> None:
    cap = ask(ip, "Hello", "--no-stream")
    assert len(cap.outputs) == 1 and not cap.outputs[0].update
    assert session.sandbox.requests[-1].json.get("stream") is None


def test_code_format_offers_next_cell(ip: InteractiveShell, session: Session,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cap = ask(ip, "Write code", "--format code")  # the sandbox answers prose: nothing offered
    assert "no fenced code block" in cap.outputs[-1].data["text/plain"]
    assert getattr(ip, "rl_next_input", None) is None
    real_ask = session.ask

    def fenced_ask(*args: Any, **kwargs: Any) -> Answer:
        answer = real_ask(*args, **kwargs)
        answer.text = f"Here it is:\n```python\n{answer.text}\n```\nEnjoy."
        return answer

    monkeypatch.setattr(session, "ask", fenced_ask)
    cap = ask(ip, "Write code", "--format code")
    assert cap.outputs[-1].data["text/html"].startswith('<pre><code class="language-python">')
    assert ip.rl_next_input == session.ledger.rows()[-1]["response"].strip("\n")


def test_log_newest_first(ip: InteractiveShell, session: Session) -> None:
    ask(ip, "first " + "long " * 40)
    ask(ip, "second")
    with capture_output():
        frame = ip.run_line_magic("openrouter", "log")
    rows = session.ledger.rows()
    assert list(frame["call_id"]) == [rows[1]["call_id"], rows[0]["call_id"]]
    assert frame["prompt"].str.len().max() <= 60
    assert "served_model" in frame and "error_kind" in frame
    with capture_output():
        assert len(ip.run_line_magic("openrouter", "log 1")) == 1


def test_help_and_unknown_subcommand(ip: InteractiveShell) -> None:
    with capture_output() as cap:
        ip.run_line_magic("openrouter", "help")
    assert "%%openrouter" in cap.stdout and "%openrouter budget" in cap.stdout
    with capture_output() as cap:
        result = ip.run_line_magic("openrouter", "frobnicate")
    assert result is None
    assert "unknown subcommand 'frobnicate'" in cap.stdout
    assert f"Subcommands: {', '.join(sorted(OpenRouterMagics.SUBCOMMANDS))}" in cap.stdout
    assert "Traceback" not in cap.stdout + cap.stderr


def test_budget_refuses_second_call(ip: InteractiveShell, session: Session) -> None:
    with capture_output() as cap:
        ip.run_line_magic("openrouter", "budget 1")
    assert "at most 1 more request" in cap.stdout
    first = ask(ip, "one")
    second = ask(ip, "two")
    assert "sandbox: simulated answer" in first.outputs[-1].data["text/plain"]
    assert "(budget)" in second.outputs[-1].data["text/plain"]
    assert session.ledger.rows()[-1]["error_kind"] == "budget"
    assert len(session.sandbox.requests) == 1
    with capture_output():
        ip.run_line_magic("openrouter", "budget off")
    assert session.budget is None
    ask(ip, "three")
    assert session.ledger.rows()[-1]["status"] == "ok"


def test_sandbox_switch(ip: InteractiveShell, session: Session) -> None:
    with capture_output() as cap:
        ip.run_line_magic("openrouter", "sandbox on")
    assert get_session() is not session and get_session().mode == "sandbox"
    assert "mode: sandbox" in cap.stdout
    with capture_output() as cap:
        ip.run_line_magic("openrouter", "sandbox off")
    # conftest sets OPENROUTER_NB_SANDBOX=1, so "off" falls back to the environment's choice
    assert "mode: sandbox: OPENROUTER_NB_SANDBOX=1" in cap.stdout


def test_quota_subcommand_displays_meter(ip: InteractiveShell, session: Session) -> None:
    with capture_output() as cap:
        ip.run_line_magic("openrouter", "quota")
    assert cap.outputs[0].data["text/plain"].startswith("QuotaMeter(minute 0/20")
    quota_meter(session).close()


def test_key_entry_key_never_in_outputs(ip: InteractiveShell, session: Session) -> None:
    key = "sk-or-v1-" + "cd" * 32
    try:
        with capture_output() as cap:
            ip.run_line_magic("openrouter", "key")
            entry = KeyEntry()
            entry.password.value = key
            entry.button.click()
            assert config.memory_key() == key
            assert entry.password.value == ""
            set_session(session)
            ask(ip, f"my key is {key[:12]}")
            ip.run_line_magic("openrouter", "log")
        text = all_text(cap) + repr(entry) + entry.status.value
        text += json.dumps([c.get_state() for c in (entry.password, entry.status)])
        assert key not in text and key[9:] not in text
        assert f"sk-or-…{key[-4:]}" in entry.status.value
    finally:
        config.set_memory_key(None)


def test_notebook_run_never_stores_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    key = "sk-or-v1-" + "ab" * 32
    home = tmp_path / "home"
    monkeypatch.setenv("OPENROUTER_API_KEY", key)
    monkeypatch.setenv("OPENROUTER_NB_SANDBOX", "1")
    monkeypatch.setenv("OPENROUTER_NB_HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "%load_ext openrouter_nb",
        "%%openrouter --out reply\nExplain {{braces}} and SSE in one sentence",
        "%openrouter log",
        "%openrouter quota",
        "%openrouter key",
    )]
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=60,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, str(path))
    saved = path.read_text()
    assert "sandbox: simulated answer" in saved
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.outputs)
    assert key not in saved and key[9:] not in saved
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.sqlite" for p in files)
    for file in files:
        assert key.encode() not in file.read_bytes()
