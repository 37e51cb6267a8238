"""What a workshop sees, in JupyterLab AND Notebook 7, rendered by a real (headless) chromium.

One server per frontend, with live streaming display on (``OPENROUTER_NB_STREAM_DISPLAY=live``)
and the sandbox at its realistic speed (``OPENROUTER_NB_SANDBOX_SPEED=realistic``: each model's
first-token delay and tokens per second). A generated notebook is run cell by cell:

1. streaming: the answer's output is sampled while it streams and must go through several
   distinct DOM states (growing text) before the footer appears, with no cursor left after;
2. interrupt: Kernel → Interrupt (``notebook:interrupt-kernel``) mid-answer leaves the text
   that arrived, one "■ interrupted" line, a one-line ``KeyboardInterrupt`` and no traceback
   of internals; the kernel then answers the next cell;
3. the compact log: ``%openrouter log`` as one table, newest first, the interrupted row marked;
4. the dark theme: the log's text is light on a dark background (theme CSS variables).

Cells are fired with ``commands.execute`` from ``page.evaluate`` without awaiting the promise
(as in test_lab.py); kernel idleness is read from the session context, which both frontends
share. Screenshots (README pictures with ``OPENROUTER_NB_SCREENSHOTS=docs``): the streamed
answer, the interrupted cell and the log, light and dark.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LabServer, jupyter_server
from .test_lab import KERNEL_START_MS, LAB_LOAD_MS, STEP_MS, screenshot_dir

NOTEBOOK = "workshop-check.ipynb"
LONG = ("Write a detailed, 600-word history of the printing press, from Gutenberg to the "
        "steam press, with headings.")
CELLS = [
    "%load_ext openrouter_nb",
    f"%%openrouter -m google/gemma-3-27b-it:free\n{LONG}",
    f"%%openrouter -m google/gemma-3-27b-it:free\n{LONG} Then list ten sources.",
    "%%openrouter -m google/gemma-3-27b-it:free\nSay hello in five words.",
    "%openrouter log",
]
LOAD, STREAM, INTERRUPT, AFTER, LOG = range(len(CELLS))
FOOTER = "sandbox: simulated answer"
LIVE_ENV = {"OPENROUTER_NB_STREAM_DISPLAY": "live", "OPENROUTER_NB_SANDBOX_SPEED": "realistic"}


@pytest.fixture(scope="module", params=["lab", "notebook"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           chromium_executable: str) -> Iterator[LabServer]:
    with jupyter_server(tmp_path_factory.mktemp(request.param), request.param,
                        LIVE_ENV) as started:
        started.flavor = request.param  # type: ignore[attr-defined]
        yield started


def write_notebook(path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"},
                  "language_info": {"name": "python"}})
    nbformat.write(notebook, path)


def run_cell(page: Any, index: int) -> None:
    """Make cell ``index`` active and run it (the promise is not awaited)."""
    page.evaluate(
        """(index) => {
            const panel = window.jupyterapp.shell.currentWidget;
            panel.content.activeCellIndex = index;
            window.jupyterapp.commands.execute('notebook:run-cell');
        }""", index)


def command(page: Any, name: str, args: dict[str, Any] | None = None) -> None:
    page.evaluate("([name, args]) => { window.jupyterapp.commands.execute(name, args); }",
                  [name, args or {}])


def wait_idle(page: Any, timeout_ms: float = STEP_MS) -> None:
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = panel && panel.sessionContext && panel.sessionContext.session
                && panel.sessionContext.session.kernel;
            return kernel && kernel.status === 'idle' && !panel.sessionContext.pendingInput;
        }""", timeout=timeout_ms)


def output_text(page: Any, index: int) -> str:
    return str(page.evaluate(
        """(index) => {
            const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
            const area = cell && cell.querySelector('.jp-OutputArea');
            return area ? area.innerText : '';
        }""", index))


def test_workshop_in_the_browser(server: LabServer, page: Any) -> None:
    write_notebook(server.root / NOTEBOOK)
    flavor = server.flavor  # type: ignore[attr-defined]
    try:
        check_workshop(server, page, flavor, screenshot_dir())
    except Exception as error:
        failure = server.root.parent / f"failure-{flavor}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(failure))
        pytest.fail(f"{flavor}: {type(error).__name__}: {error}\n(screenshot: {failure})\n"
                    f"server log, last lines:\n{server.log_tail(25)}", pytrace=True)


def check_workshop(server: LabServer, page: Any, flavor: str, shots: Path) -> None:
    from playwright.sync_api import expect

    path = f"/lab/tree/{NOTEBOOK}" if flavor == "lab" else f"/notebooks/{NOTEBOOK}"
    page.goto(f"{server.url}{path}", timeout=LAB_LOAD_MS)
    page.wait_for_function("window.jupyterapp !== undefined", timeout=LAB_LOAD_MS)
    page.wait_for_function("document.querySelectorAll('.jp-Notebook .jp-Cell').length === "
                           f"{len(CELLS)}", timeout=LAB_LOAD_MS)
    wait_idle(page, KERNEL_START_MS)
    cells = page.locator(".jp-Notebook .jp-Cell")
    run_cell(page, LOAD)
    wait_idle(page)

    # 1. live streaming: several distinct states before the footer, no cursor after.
    run_cell(page, STREAM)
    states: list[str] = []
    deadline = time.monotonic() + STEP_MS / 1000
    while time.monotonic() < deadline:
        text = output_text(page, STREAM)
        if text and (not states or states[-1] != text):
            states.append(text)
        if FOOTER in text:
            break
        time.sleep(0.05)
    before_footer = [s for s in states if FOOTER not in s and "▌" in s]
    assert FOOTER in states[-1], f"{flavor}: no footer within {STEP_MS} ms: {states[-1:]}"
    assert len(before_footer) >= 3, f"{flavor}: only {len(before_footer)} streamed states"
    lengths = [len(s) for s in before_footer]
    assert lengths == sorted(lengths), f"{flavor}: the streamed text did not only grow"
    assert "▌" not in states[-1]
    wait_idle(page)
    cells.nth(STREAM).screenshot(path=str(shots / f"streamed-answer-{flavor}.png"))

    # 2. an interrupt mid-answer: the text so far, one line, no internals; the kernel answers.
    run_cell(page, INTERRUPT)
    page.wait_for_function(
        """(index) => {
            const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
            const text = cell ? cell.querySelector('.jp-OutputArea').innerText : '';
            return text.includes('▌') && text.length > 200;
        }""", arg=INTERRUPT, timeout=STEP_MS)
    command(page, "notebook:interrupt-kernel")
    interrupted = cells.nth(INTERRUPT).locator(".jp-OutputArea")
    expect(interrupted).to_contain_text("■ interrupted —", timeout=STEP_MS)
    expect(interrupted).to_contain_text("characters kept in the ledger")
    expect(interrupted).to_contain_text("KeyboardInterrupt: stopped after")
    wait_idle(page)
    text = output_text(page, INTERRUPT)
    assert "▌" not in text and FOOTER not in text
    for internal in ("Traceback", "httpx", "site-packages", "openrouter_nb/"):
        assert internal not in text, f"{flavor}: {internal!r} in the interrupted output"
    run_cell(page, AFTER)
    expect(cells.nth(AFTER).locator(".jp-OutputArea")).to_contain_text(FOOTER, timeout=STEP_MS)
    wait_idle(page)
    cells.nth(INTERRUPT).screenshot(path=str(shots / f"interrupted-{flavor}.png"))

    # 3. the compact log: one table, newest first, the interrupted row marked.
    run_cell(page, LOG)
    table = cells.nth(LOG).locator("table.orn-log")
    expect(table).to_be_visible(timeout=STEP_MS)
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_class(re.compile(r"\born-log-ok\b"))
    expect(rows.nth(1)).to_have_class(re.compile(r"\born-log-interrupted\b"))
    expect(rows.nth(1)).to_contain_text("■")
    expect(rows.nth(2)).to_contain_text("gemma-3-27b-it:free")
    one_line = page.evaluate(
        """() => [...document.querySelectorAll('table.orn-log tbody tr')]
                 .map(r => r.getBoundingClientRect().height)""")
    assert max(one_line) < 40, f"{flavor}: log rows wrap ({one_line} px high)"
    wait_idle(page)
    table.screenshot(path=str(shots / f"log-light-{flavor}.png"))

    # 4. the dark theme: light text on a dark background, same table.
    command(page, "apputils:change-theme", {"theme": "JupyterLab Dark"})
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=STEP_MS)
    colours = page.evaluate(
        """() => {
            const cell = document.querySelector('table.orn-log tbody td:nth-child(3)');
            const lum = (c) => {
                const [r, g, b] = c.match(/\\d+/g).slice(0, 3).map(Number);
                return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
            };
            let node = cell, bg = 'rgba(0, 0, 0, 0)';
            while (node && /rgba\\(0, 0, 0, 0\\)|transparent/.test(bg)) {
                bg = getComputedStyle(node).backgroundColor; node = node.parentElement;
            }
            return {text: lum(getComputedStyle(cell).color), background: lum(bg)};
        }""")
    assert colours["text"] > 0.6 and colours["background"] < 0.3, f"{flavor}: {colours}"
    table.screenshot(path=str(shots / f"log-dark-{flavor}.png"))
    if flavor == "lab":
        page.screenshot(path=str(shots / "lab-dark.png"))
    command(page, "apputils:change-theme", {"theme": "JupyterLab Light"})
