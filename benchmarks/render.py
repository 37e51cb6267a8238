"""Rendering a 1 MB adversarial answer in every view (issue 15: no view may freeze).

Each input is ~1 MB of markup that is slow for a Markdown parser (emphasis runs, unclosed
fences, deep nesting, bracket runs, dense tables and lists, long reference definitions,
terminal escapes). Each view renders each input ``REPEATS`` times; the median is kept, and each
view's figure is its worst input. Views: ``render.to_html``, ``render.terminal_text``,
``render.code_blocks``, the live stream preview, the final answer in each ``--format``,
``Answer._repr_html_`` and the compare view's column.

    python benchmarks/render.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openrouter_nb.answer import Answer  # noqa: E402
from openrouter_nb.api.types import StreamDelta  # noqa: E402
from openrouter_nb.notebook.compare_view import CompareView  # noqa: E402
from openrouter_nb.notebook.display import FORMATS, StreamingDisplay, answer_bundle  # noqa: E402
from openrouter_nb.render import code_blocks, terminal_text, to_html  # noqa: E402

SIZE = 1_000_000
REPEATS = 3
TARGET_S = 0.5


def _fill(unit: str) -> str:
    return (unit * (SIZE // len(unit) + 1))[:SIZE]


INPUTS: dict[str, str] = {
    "emphasis ' *a'": _fill(" *a"),
    "strong ' **a'": _fill(" **a"),
    "mixed '*_'": _fill("*_"),
    "unclosed fences": _fill("```\n"),
    "tilde fences": _fill("~~~a\n"),
    "nested quotes": _fill(">"),
    "nested lists": _fill("- "),
    "open brackets": _fill("["),
    "image brackets": _fill("!["),
    "link destinations": _fill("[](" + "a" * 30),
    "parenthesised destinations": _fill("[](" + "()" * 20),
    "ordered list lines": _fill("1. a\n"),
    "a fence, then list lines": "```py\nx = 1\n```\n" + _fill("1. a\n"),
    "one-column table": "a|b\n-|-\n" + _fill("x\n"),
    "wide table": "|" + "a|" * 200 + "\n|" + "-|" * 200 + "\n" + _fill("|" + "x|" * 200 + "\n"),
    "reference definitions": _fill("[" + "r" * 990 + "]: javascript:alert(1)\n"),
    "raw html": _fill("<img src=x onerror=alert(1)>"),
    "terminal escapes": _fill("\x1b[31m\x1b]0;t\x07\x9b2J"),
    "prose": _fill("The quick brown fox jumps over the lazy dog. "),
}


class _Null:
    def show(self, bundle: dict[str, str], *, updatable: bool) -> None:
        pass

    def update(self, bundle: dict[str, str]) -> None:
        pass


def _answer(text: str) -> Answer:
    return Answer(text=text, model="m/a:free", requested_model="openrouter/free", provider="P",
                  usage={"prompt_tokens": 3, "completion_tokens": 5}, latency_s=0.5,
                  call_id="c1", attempts=1, sandbox=True, mode="sandbox")


def _preview(text: str) -> object:
    view = StreamingDisplay(live=True, target=_Null(), clock=iter(range(1, 10)).__next__)
    view.on_delta(StreamDelta(text))  # one refresh of the live preview
    return view


def _views() -> dict[str, Callable[[str], object]]:
    views: dict[str, Callable[[str], object]] = {
        "to_html": to_html, "terminal_text": terminal_text, "code_blocks": code_blocks,
        "stream_preview": _preview,
    }
    for fmt in FORMATS:
        views[f"final_{fmt}"] = lambda text, fmt=fmt: answer_bundle(_answer(text), fmt)
    views["answer_repr_html"] = lambda text: _answer(text)._repr_html_()
    views["compare"] = lambda text: CompareView(["m/a:free"], [_answer(text)])
    return views


def _median_s(view: Callable[[str], object], text: str) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        view(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    views = _views()
    for view in views.values():  # build the parsers, import ipywidgets
        view("warm *up*")
    worst: dict[str, tuple[float, str]] = {}
    for name, text in INPUTS.items():
        row = {view: _median_s(render, text) for view, render in views.items()}
        print(f"{name:28} " + " ".join(f"{view}={s:.3f}" for view, s in row.items()), flush=True)
        for view, seconds in row.items():
            if seconds > worst.get(view, (-1.0, ""))[0]:
                worst[view] = (seconds, name)
    failed = False
    for view, (_seconds, name) in worst.items():
        print(f"worst input for {view}: {name}")
    for view, (seconds, _name) in worst.items():
        failed |= seconds > TARGET_S
        print(f"figure: render_{view}_1mb = {seconds:.3f} s (target <= {TARGET_S})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
