"""``%%openrouter --schema`` and ``--compare``, ``%openrouter models``: through an InteractiveShell."""

from __future__ import annotations

import html
import json
from typing import Any

import pydantic
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.answer import Answer
from openrouter_nb.notebook.commands import HELP
from openrouter_nb.notebook.compare_view import CompareView
from openrouter_nb.notebook.display import STREAM_ENV
from openrouter_nb.notebook.flags import context_size
from openrouter_nb.notebook.magics import OpenRouterMagics
from openrouter_nb.session import Session

FLAKY = "deepseek/deepseek-chat-v3.1:free"  # supports JSON, breaks it now and then
STRUCTURED = "google/gemma-3-27b-it:free"               # structured outputs in the sandbox
PROSE_ONLY = "meta-llama/llama-3.3-70b-instruct:free"   # no structured outputs: schema in prompt
CITY_SCHEMA = {"type": "object",
               "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
               "required": ["city", "population"]}
COMPARED = ["google/gemma-3-27b-it:free", "openai/gpt-oss-20b:free", "no/such:free"]


class City(pydantic.BaseModel):
    city: str
    population: int


@pytest.fixture(autouse=True)
def schemas(ip: InteractiveShell) -> None:
    ip.user_ns.update(city_schema=CITY_SCHEMA, City=City)


def ask(ip: InteractiveShell, body: str, line: str = "") -> Any:
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", line, body)
    return cap


def line(ip: InteractiveShell, text: str) -> tuple[Any, Any]:
    with capture_output() as cap:
        result = ip.run_line_magic("openrouter", text)
    return result, cap


class Recorder:
    """A display target that keeps every bundle (live streaming, no frontend)."""

    def __init__(self) -> None:
        self.bundles: list[dict[str, str]] = []

    def show(self, bundle: dict[str, str], *, updatable: bool) -> None:
        self.bundles.append(bundle)

    def update(self, bundle: dict[str, str]) -> None:
        self.bundles.append(bundle)


# -- --schema ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["city_schema", "City"])
def test_schema_valid_answer(ip: InteractiveShell, session: Session, name: str) -> None:
    cap = ask(ip, "Largest city of Norway?", f"--schema {name} -m {STRUCTURED} --out reply")
    (output,) = cap.outputs
    reply = ip.user_ns["reply"]
    assert isinstance(reply, Answer) and reply.validated is True
    data = reply.data.model_dump() if name == "City" else reply.data
    assert set(data) == {"city", "population"} and isinstance(data["population"], int)
    if name == "City":
        assert isinstance(reply.data, City)
    pretty = json.dumps(data, indent=2, ensure_ascii=False)
    plain, rendered = output.data["text/plain"], output.data["text/html"]
    assert plain == f"{reply.text}\n\n{pretty}\n\n{reply.footer()}"
    assert f'<pre><code class="language-json">{html.escape(pretty, quote=False)}</code></pre>' \
        in rendered
    assert "valid JSON" in reply.footer() and "valid JSON" in rendered
    if reply.attempts > 1:
        assert f"{reply.attempts} attempts" in plain
    body = session.sandbox.requests[-1].json
    assert body["response_format"]["type"] == "json_schema"
    rows = session.ledger.rows(call_id=reply.call_id)
    assert rows[-1]["validated"] is True and len(rows) == reply.attempts
    assert not cap.stderr


def test_schema_reask_status_line(ip: InteractiveShell, session: Session,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """When a streamed answer breaks the schema, the view says so and asks again."""
    monkeypatch.setenv(STREAM_ENV, "live")
    for country in ("Norway", "Japan", "Chile", "Kenya", "Peru", "Spain"):
        recorder = Recorder()
        monkeypatch.setattr(OpenRouterMagics, "target_factory", lambda self, r=recorder: r)
        ask(ip, f"Largest city of {country}?", f"--schema city_schema -m {FLAKY} --out reply")
        reply = ip.user_ns.get("reply")
        if reply is not None and reply.attempts > 1:
            break
    else:
        pytest.fail("no prompt needed a re-ask: the sandbox's flaky model never broke its JSON")
    assert reply.validated is True
    statuses = [b["text/plain"] for b in recorder.bundles
                if b["text/plain"].startswith("↻ invalid JSON")]
    assert statuses and statuses[0].startswith("↻ invalid JSON (")
    assert statuses[0].endswith("asking again (attempt 2)")
    assert f"{reply.attempts} attempts · valid JSON" in recorder.bundles[-1]["text/plain"]


def test_schema_unsupported_model_follows_the_prompt_only_sometimes(
        ip: InteractiveShell, session: Session) -> None:
    """Without response_format the schema rides in the prompt: the model tries (JSON in a
    fence or after a lead-in is still found) and sometimes fails, which ends cleanly."""
    outcomes: dict[str, str] = {}
    for country in ("Norway", "Japan", "Chile", "Kenya", "Peru", "Spain", "Italy", "Ghana"):
        cap = ask(ip, f"Largest city of {country}?", f"--schema City -m {PROSE_ONLY} "
                  "--retries 0 --out r")
        assert "Traceback" not in cap.stdout + cap.stderr and not cap.stderr
        assert "response_format" not in session.sandbox.requests[-1].json
        assert "JSON Schema" in session.sandbox.requests[-1].json["messages"][-1]["content"]
        if "r" in ip.user_ns:
            outcomes.setdefault("valid", country)
            assert ip.user_ns.pop("r").validated is True
        else:
            (output,) = cap.outputs
            assert output.data["text/plain"].startswith(
                "OpenRouter error (invalid_output): The answer did not match the schema after 1 try")
            outcomes.setdefault("invalid", country)
    assert set(outcomes) == {"valid", "invalid"}, outcomes
    rows = [r for r in session.ledger.rows() if r["requested_model"] == PROSE_ONLY]
    assert {r["validated"] for r in rows} == {True, False}


def test_schema_missing_name(ip: InteractiveShell, session: Session) -> None:
    with pytest.raises(UsageError, match="--schema Nope: no variable 'Nope'"):
        ask(ip, "hi", "--schema Nope")
    with capture_output() as cap:  # as a notebook cell: one short line, no traceback
        ip.run_cell("%%openrouter --schema Nope\nhi")
    assert "UsageError: --schema Nope: no variable 'Nope' in the notebook" in cap.stderr
    assert "Traceback" not in cap.stdout + cap.stderr
    assert session.sandbox.requests == [] and session.ledger.rows() == []


def test_schema_wrong_type(ip: InteractiveShell, session: Session) -> None:
    ip.user_ns["n"] = 3
    with pytest.raises(UsageError, match="'n' is a int, not a JSON Schema dict"):
        ask(ip, "hi", "--schema n")
    assert session.sandbox.requests == []


# -- --compare -------------------------------------------------------------------------------------
def test_compare_side_by_side(ip: InteractiveShell, session: Session) -> None:
    cap = ask(ip, "Name a prime number",
              f"--compare {','.join(COMPARED)} --out cmp --max-tokens 1000 --retries 0 "
              '--system "Be terse." --seed 4')
    (output,) = cap.outputs
    assert output.data["text/plain"] == (
        "CompareView(3 models: google/gemma-3-27b-it:free ok, openai/gpt-oss-20b:free ok, "
        "no/such:free model_unavailable)")
    assert "application/vnd.jupyter.widget-view+json" in output.data
    frame = ip.user_ns["cmp"]
    assert list(frame["requested_model"]) == COMPARED
    assert list(frame["status"]) == ["ok", "ok", "error"]
    assert frame.iloc[2]["error_kind"] == "model_unavailable"
    rows = session.ledger.rows()
    assert sorted(r["requested_model"] for r in rows) == sorted(COMPARED)
    assert len({r["call_id"] for r in rows}) == 3
    chats = [r.json for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert all(b["max_tokens"] == 1000 and b["seed"] == 4 and "stream" not in b for b in chats)
    assert all(b["messages"][0] == {"role": "system", "content": "Be terse."} for b in chats)
    assert not cap.stdout and not cap.stderr


def test_compare_view_columns(session: Session) -> None:
    results = session.compare("Name a prime", COMPARED, retries=0)
    view = CompareView(COMPARED, results)
    assert len(view.children) == 3
    assert "repeat(3," in view.layout.grid_template_columns
    for model, result, column in zip(COMPARED, results, view.children, strict=True):
        header, details, body = column.children
        assert header.value == f"<b>{model}</b>"
        if isinstance(result, Answer):
            assert f"served by {result.model}" in details.value and "tokens" in details.value
            assert f"{result.latency_s:.2f} s" in details.value
            assert "[sandbox] Simulated answer" in body.value
        else:
            assert "error: model_unavailable" in details.value
            assert "no/such:free" in body.value
    assert repr(view) == ("CompareView(3 models: google/gemma-3-27b-it:free ok, "
                          "openai/gpt-oss-20b:free ok, no/such:free model_unavailable)")
    assert len(view.frame()) == 3


def test_compare_with_schema(ip: InteractiveShell, session: Session) -> None:
    models = [STRUCTURED, "openai/gpt-oss-20b:free"]
    ask(ip, "Largest city of Norway?", f"--compare {','.join(models)} --schema City --out cmp")
    frame = ip.user_ns["cmp"]
    assert list(frame["validated"]) == [True, True]
    assert all(b.get("response_format") for b in
               (r.json for r in session.sandbox.requests if r.path.endswith("/completions")))


def test_compare_never_streams(ip: InteractiveShell, session: Session,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STREAM_ENV, "live")
    cap = ask(ip, "hi", f"--compare {STRUCTURED},openai/gpt-oss-20b:free")
    assert len(cap.outputs) == 1 and not cap.outputs[0].update
    assert all("stream" not in r.json for r in session.sandbox.requests
               if r.path.endswith("/chat/completions"))


@pytest.mark.parametrize(("flags", "message"), [
    ("--compare ,", "--compare needs model ids"),
    ("--compare a/b:free -m c/d:free", "leave out -m and --fallback"),
])
def test_compare_usage_errors(ip: InteractiveShell, session: Session, flags: str,
                              message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ask(ip, "hi", flags)
    assert session.sandbox.requests == []


def test_compare_view_escapes_model_output() -> None:
    text = ('<script>alert(1)</script> **bold** `<b>x</b>` [a](javascript:alert(1))\n\n'
            '- one\n- <img src=x onerror=alert(1)>\n\n```html\n<div>code</div>\n```\n# Title')
    answer = Answer(text=text, model="m/a:free", requested_model="m/a:free", provider=None,
                    usage={}, latency_s=0.1, call_id="c", attempts=1, sandbox=True)
    rendered = CompareView(["m/a:free"], [answer]).columns[0].children[2].value
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "<strong>bold</strong>" in rendered and "<code>&lt;b&gt;x&lt;/b&gt;</code>" in rendered
    assert "<li>&lt;img src=x onerror=alert(1)&gt;</li>" in rendered
    assert '<pre><code class="language-html">&lt;div&gt;code&lt;/div&gt;\n</code></pre>' in rendered
    assert "<h1>Title</h1>" in rendered


# -- %openrouter models ----------------------------------------------------------------------------
def test_models_default_free(ip: InteractiveShell, session: Session) -> None:
    frame, cap = line(ip, "models")
    expected = [m.id for m in session.catalog.filter(free=True)]
    assert list(frame["id"]) == expected and frame["free"].all()
    everything, _ = line(ip, "models --all")
    assert len(everything) == len(session.catalog.models()) > len(frame)
    assert not cap.stdout and not cap.stderr


@pytest.mark.parametrize("flag,column", [("--vision", "vision"), ("--tools", "tools"),
                                         ("--structured", "structured")])
def test_models_capability_filters(ip: InteractiveShell, session: Session, flag: str,
                                   column: str) -> None:
    frame, _ = line(ip, f"models {flag}")
    assert len(frame) and frame[column].all() and frame["free"].all()
    expected = session.catalog.filter(free=True, **{column: True})
    assert list(frame["id"]) == [m.id for m in expected]


def test_models_min_context_and_twin_prices(ip: InteractiveShell, session: Session) -> None:
    frame, _ = line(ip, "models --vision --min-context 200k")
    assert len(frame) and (frame["context_length"] >= 200_000).all() and frame["vision"].all()
    gemma = line(ip, "models")[0].set_index("id").loc[STRUCTURED]
    assert gemma["paid_twin"] == "google/gemma-3-27b-it" and gemma["paid_prompt_per_m"] > 0


def test_models_refresh_reports_changes(ip: InteractiveShell, session: Session) -> None:
    _, cap = line(ip, "models --refresh")  # no earlier copy
    assert cap.stdout.startswith("Fetched the catalog: ")
    assert "free (no earlier copy to compare with)." in cap.stdout
    _, cap = line(ip, "models --refresh")
    assert cap.stdout == "No change in the free models since the last refresh.\n"
    cached = json.loads(session.catalog.path.read_text())
    cached["data"] = [e for e in cached["data"] if e["id"] != STRUCTURED]
    cached["data"].append({"id": "gone/model:free", "pricing": {"prompt": "0", "completion": "0"}})
    session.catalog.path.write_text(json.dumps(cached))
    frame, cap = line(ip, "models --refresh")
    assert cap.stdout == f"New free models: {STRUCTURED}; gone: gone/model:free.\n"
    assert STRUCTURED in set(frame["id"])


@pytest.mark.parametrize(("args", "message"), [
    ("models --bogus", "%openrouter models: unrecognized arguments: --bogus."),
    ("models --min-context lots", "argument --min-context: not a number of tokens: 'lots'"),
    ("models --free --all", "not allowed with argument --free"),
    ("picker --refresh", "%openrouter picker: unrecognized arguments: --refresh."),
])
def test_subcommand_bad_flags(ip: InteractiveShell, args: str, message: str) -> None:
    result, cap = line(ip, args)
    assert result is None and message in cap.stdout and "usage: %openrouter" in cap.stdout
    assert "Traceback" not in cap.stdout + cap.stderr and not cap.stderr


def test_models_help_and_empty(ip: InteractiveShell) -> None:
    result, cap = line(ip, "models --help")
    assert result is None and cap.stdout.startswith("usage: %openrouter models [--free|--all]")
    frame, cap = line(ip, "models --min-context 100m")
    assert frame.empty and "No model matches these filters" in cap.stdout


def test_context_size() -> None:
    assert [context_size(v) for v in ("32768", "32k", "1M", "1_000", "0")] == [
        32768, 32000, 1_000_000, 1000, 0]


def test_help_names_new_flags_and_subcommands(ip: InteractiveShell) -> None:
    for text in ("--schema NAME", "--compare M1,M2", "%openrouter models [--free|--all]",
                 "--min-context N", "--refresh", "%openrouter picker"):
        assert text in HELP
    doc = OpenRouterMagics.openrouter_cell.__doc__ or ""
    assert "--schema NAME" in doc and "--compare M1,M2,..." in doc
    assert {"models", "picker"} <= set(OpenRouterMagics.SUBCOMMANDS)
