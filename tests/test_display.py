"""The streaming answer display: bounded update rate, final render, formats, safety."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.api.errors import MinuteRateLimit
from openrouter_nb.api.types import StreamDelta
from openrouter_nb.notebook.display import (
    STREAM_ENV,
    StreamingDisplay,
    answer_bundle,
    error_bundle,
    extract_code,
    live_streaming_enabled,
)
from openrouter_nb.render import fenced
from openrouter_nb.session import Session

from .conftest import make_answer


class FakeClock:
    """Advances by ``step`` seconds on every read."""

    def __init__(self, step: float = 0.001) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Recorder:
    """A display target that keeps every bundle."""

    def __init__(self) -> None:
        self.shown: list[tuple[dict[str, str], bool]] = []
        self.updates: list[dict[str, str]] = []

    def show(self, bundle: dict[str, str], *, updatable: bool) -> None:
        self.shown.append((bundle, updatable))

    def update(self, bundle: dict[str, str]) -> None:
        self.updates.append(bundle)


# -- the throttle -----------------------------------------------------------------------------------
def test_2000_deltas_bounded_updates() -> None:
    target, clock = Recorder(), FakeClock(step=0.001)  # 2000 chunks over ~2 s
    view = StreamingDisplay(live=True, target=target, clock=clock)
    view.start("openrouter/free")
    pieces = [f"w{i} " for i in range(2000)]
    for piece in pieces:
        view.on_delta(StreamDelta(piece))
    view.finish(make_answer("".join(pieces)))
    assert len(target.shown) == 1 and target.shown[0][1] is True
    assert len(target.updates) <= 60
    assert 20 <= len(target.updates)  # it did stream: ~15/s over ~2 s
    final = target.updates[-1]
    assert final["text/plain"].startswith("".join(pieces))
    assert final["text/plain"].endswith("sandbox: simulated answer")


def test_update_rate_never_exceeds_15_per_second() -> None:
    target, clock = Recorder(), FakeClock(step=0.0001)
    view = StreamingDisplay(live=True, target=target, clock=clock)
    for _ in range(20000):  # 2 s of fake time
        view.on_delta(StreamDelta("x"))
    assert len(target.shown) + len(target.updates) <= 2 * 15 + 1


def test_final_mode_one_display_no_updates() -> None:
    target = Recorder()
    view = StreamingDisplay(live=False, target=target, clock=FakeClock())
    view.start("m")
    for i in range(500):
        view.on_delta(StreamDelta(str(i)))
    view.on_event("retry", {"wait_s": 3.0, "reason": "per-minute limit: waiting", "attempt": 1})
    view.finish(make_answer("done"))
    assert len(target.shown) == 1 and target.shown[0][1] is False and target.updates == []


def test_env_switch() -> None:
    assert live_streaming_enabled({}) is True
    assert live_streaming_enabled({STREAM_ENV: "final"}) is False
    assert live_streaming_enabled({STREAM_ENV: "live"}) is True


# -- through the magic ---------------------------------------------------------------------------------
def test_magic_streams_2000_chunks_live(ip: InteractiveShell, session: Session,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STREAM_ENV, raising=False)
    ip.magics_manager.registry["OpenRouterMagics"].clock = FakeClock(step=0.001)
    session.client._http.headers["X-Sandbox-Answer-Tokens"] = "2000"
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", "--max-tokens 4000", "Tell me a long story")
    updates = [o for o in cap.outputs if o.update]
    assert 10 <= len(updates) <= 60
    assert not cap.outputs[0].update and len(cap.outputs) == len(updates) + 1
    ids = {o.transient["display_id"] for o in cap.outputs}
    assert len(ids) == 1  # one handle
    row = session.ledger.rows()[-1]
    assert row["completion_tokens"] == 2000
    final = cap.outputs[-1].data["text/plain"]
    assert final.startswith(row["response"]) and "sandbox: simulated answer" in final


def test_magic_final_mode_one_display(ip: InteractiveShell, session: Session,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STREAM_ENV, "final")
    session.client._http.headers["X-Sandbox-Answer-Tokens"] = "2000"
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", "--max-tokens 4000", "Tell me a long story")
    assert len(cap.outputs) == 1 and not cap.outputs[0].update
    assert session.ledger.rows()[-1]["stream"] is True


def test_magic_retry_status_and_reset(ip: InteractiveShell, session: Session,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STREAM_ENV, raising=False)
    session.sandbox.queue_fault("midstream_error")
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", "", "Hello")
    texts = [o.data["text/plain"] for o in cap.outputs]
    assert any("midstream_error" in t and "attempt 2" in t for t in texts)
    final = texts[-1]
    assert "2 attempts" in final
    assert final.startswith(session.ledger.rows()[-1]["response"])


# -- rendering -----------------------------------------------------------------------------------------
def test_script_is_escaped() -> None:
    text = "Hi <script>alert(1)</script> [x](javascript:alert(1))"
    bundle, _ = answer_bundle(make_answer(text))
    assert "text/markdown" not in bundle  # only our HTML: no frontend parses model Markdown
    assert "<script>" not in bundle["text/html"]
    assert "&lt;script&gt;" in bundle["text/html"]
    assert "href" not in bundle["text/html"]  # the javascript: link stays text
    target = Recorder()
    view = StreamingDisplay(live=True, target=target, clock=FakeClock(step=1.0))
    view.on_delta(StreamDelta(text))
    assert "<script>" not in target.shown[0][0]["text/html"]
    assert "&lt;script&gt;" in target.shown[0][0]["text/html"]


def test_footer_is_small_grey_and_escaped() -> None:
    bundle, _ = answer_bundle(make_answer("ok", model="evil/<b>x</b>"))
    assert '<small style="color:gray">' in bundle["text/html"]
    assert "<b>x</b>" not in bundle["text/html"]


def test_text_format() -> None:
    bundle, code = answer_bundle(make_answer("a <b> c"), "text")
    assert code is None and bundle["text/plain"].startswith("a <b> c\n\n")
    assert "a &lt;b&gt; c" in bundle["text/html"]


def test_json_format() -> None:
    bundle, _ = answer_bundle(make_answer('```json\n{"a": [1, 2]}\n```'), "json")
    assert bundle["text/plain"].startswith('{\n  "a": [\n    1,')
    assert bundle["text/html"].startswith('<pre><code class="language-json">{')
    bundle, _ = answer_bundle(make_answer("not json <i>"), "json")
    assert "not valid JSON" in bundle["text/plain"]
    assert "<i>" not in bundle["text/html"] and "not json &lt;i&gt;" in bundle["text/html"]


def test_code_format_and_next_input() -> None:
    class Shell:
        next_input: str | None = None

        def set_next_input(self, text: str, replace: bool = False) -> None:
            self.next_input = text

    shell = Shell()
    text = "Here:\n```py\nprint('```')\nx = 1\n```\nDone."
    view = StreamingDisplay(live=False, fmt="code", target=Recorder(), shell=shell)
    assert view.finish(make_answer(text)) == "print('```')\nx = 1"
    assert shell.next_input == "print('```')\nx = 1"
    assert extract_code("just code") is None  # no fenced block: nothing to offer
    assert fenced("a ```` b").startswith("`````\n")


def test_error_bundle_escapes_and_redacts() -> None:
    error = MinuteRateLimit("Slow down <b>now</b> sk-or-v1-" + "ab" * 32)
    error.call_id, error.attempts = "abc123", 3
    bundle = error_bundle(error)
    assert "rate_limit_minute" in bundle["text/plain"] and "abc123" in bundle["text/plain"]
    assert "3 attempts" in bundle["text/plain"]
    assert "&lt;b&gt;now" in bundle["text/html"] and "<b>now" not in bundle["text/html"]
    assert "ab" * 32 not in bundle["text/plain"] + bundle["text/html"]


def test_retry_event_resets_text() -> None:
    target = Recorder()
    view = StreamingDisplay(live=True, target=target, clock=FakeClock(step=1.0))
    view.on_delta(StreamDelta("partial"))
    view.on_event("retry", {"error": MinuteRateLimit("x"), "wait_s": 12.0,
                            "reason": "per-minute limit: waiting for the reset", "attempt": 1})
    assert view.text == ""
    assert target.updates[-1]["text/plain"] == "⏳ per-minute limit: waiting 12 s, attempt 2"
    view.on_event("waited", {"seconds": 4.2, "model": "m"})
    assert "waited 4 s" in target.updates[-1]["text/plain"]


def test_bad_format_rejected() -> None:
    with pytest.raises(ValueError):
        StreamingDisplay(fmt="html")
