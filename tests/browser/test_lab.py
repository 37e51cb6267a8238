"""The notebook layer in a real JupyterLab, rendered by a real (headless) chromium.

A notebook is generated into the server's throw-away root (never into ``tests/``: nbval would
collect it), opened in Lab and run in three steps, each fired with ``commands.execute`` from
``page.evaluate`` WITHOUT returning its promise (returning it hung 4 of 6 runs in the
ecosystem study), and only once the status bar says the kernel is idle:

1. ``%load_ext`` and ``%openrouter quota``: the meter shows 0/20 and 0/50, empty bars;
2. the ``%%openrouter`` ask through the free router: the footer names the routed model and says
   the answer is simulated, the meter moves to 1/20 and 1/50 (bars 5 % and 2 %);
3. ``--compare`` of three models and ``%openrouter picker``: one column per model, the meter at
   4/50, and the picker's dropdown narrows when "vision" is ticked.

Assertions are on the DOM (classes and ``style`` attributes), not on pixels. Screenshots of the
meter, the comparison and the whole window are written to a temporary folder, or to the folder
named by ``OPENROUTER_NB_SCREENSHOTS``: the README's pictures are made with
``OPENROUTER_NB_SCREENSHOTS=docs python -m pytest tests/browser``. Look at them after changing
the widgets.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .conftest import LabServer

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS_ENV = "OPENROUTER_NB_SCREENSHOTS"
NOTEBOOK = "browser-check.ipynb"
COMPARED = ["google/gemma-3-27b-it:free", "openai/gpt-oss-20b:free", "qwen/qwen3-coder:free"]
CELLS = [
    "%load_ext openrouter_nb",
    "%openrouter quota",
    "%%openrouter -m openrouter/free\nExplain server-sent events in two sentences.",
    f"%%openrouter --compare {','.join(COMPARED)}\nName one prime number and say why it is prime.",
    "%openrouter picker",
]
LOAD, QUOTA, ASK, COMPARE, PICKER = range(len(CELLS))
KERNEL_IDLE = re.compile(r"Python 3\b.*\| Idle")
LAB_LOAD_MS = 60_000
KERNEL_START_MS = 90_000
STEP_MS = 45_000


def write_notebook(path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"},
                  "language_info": {"name": "python"}})
    nbformat.write(notebook, path)


def screenshot_dir() -> Path:
    """Never the repository by default: a test run must not change tracked files."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = (REPO / chosen if not Path(chosen).is_absolute() else Path(chosen)) if chosen \
        else Path(tempfile.mkdtemp(prefix="orn-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_from(page: Any, index: int, command: str) -> None:
    """Make cell ``index`` active and fire ``command``; its promise is NOT awaited or returned."""
    page.evaluate(
        """([index, command]) => {
            const panel = window.jupyterapp.shell.currentWidget;
            if (!panel || !panel.content || panel.content.widgets === undefined) {
                throw new Error('the current main-area widget is not a notebook');
            }
            panel.content.activeCellIndex = index;
            window.jupyterapp.commands.execute(command);
        }""",
        [index, command])


def bar_width(percent: int) -> re.Pattern[str]:
    return re.compile(rf"width:\s*{percent}(\.0+)?%")


def test_notebook_layer_renders_and_updates_in_jupyterlab(lab_server: LabServer,
                                                            page: Any) -> None:
    """Meter, footer, comparison and picker render and react in Lab (see the module doc)."""
    write_notebook(lab_server.root / NOTEBOOK)
    try:
        check_in_lab(lab_server, page, screenshot_dir())
    except Exception as error:
        failure = lab_server.root.parent / "failure.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(failure))
        pytest.fail(f"{type(error).__name__}: {error}\n(screenshot: {failure})\n"
                    f"JupyterLab log, last lines:\n{lab_server.log_tail(25)}", pytrace=True)


def check_in_lab(lab_server: LabServer, page: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}", timeout=LAB_LOAD_MS)
    page.wait_for_function("window.jupyterapp !== undefined", timeout=LAB_LOAD_MS)
    idle = page.locator(".jp-StatusBar-TextItem", has_text=KERNEL_IDLE)
    expect(idle).to_be_visible(timeout=KERNEL_START_MS)

    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    expect(cells).to_have_count(len(CELLS))

    def output(index: int) -> Any:
        return cells.nth(index).locator(".jp-OutputArea")

    # 1. load the extension and show the meter: nothing used yet.
    run_from(page, ASK, "notebook:run-all-above")
    meter = output(QUOTA).locator(".widget-vbox").first
    minute_row = meter.locator(".widget-hbox", has_text="this minute")
    day_row = meter.locator(".widget-hbox", has_text="today")
    expect(meter).to_contain_text("OpenRouter quota", timeout=STEP_MS)
    expect(meter).to_contain_text("sandbox")
    expect(minute_row).to_contain_text("0/20")
    expect(day_row).to_contain_text("0/50")
    expect(minute_row.locator(".widget-hprogress .progress-bar")).to_have_attribute(
        "style", bar_width(0))
    expect(day_row.locator(".widget-hprogress .progress-bar")).to_have_attribute(
        "style", bar_width(0))
    expect(idle).to_be_visible(timeout=STEP_MS)

    # 2. one ask through the free router: footer, and the meter moves.
    run_from(page, ASK, "notebook:run-cell")
    answer = output(ASK).locator(".jp-RenderedHTML")  # our sanitized HTML, not Markdown
    expect(answer).to_contain_text("openrouter/free →", timeout=STEP_MS)
    expect(answer).to_contain_text("sandbox: simulated answer")
    expect(answer).to_contain_text("[sandbox] Simulated answer")
    expect(day_row).to_contain_text("1/50", timeout=STEP_MS)
    expect(minute_row).to_contain_text("1/20")
    expect(day_row.locator(".progress-bar")).to_have_attribute("style", bar_width(2))
    expect(minute_row.locator(".progress-bar")).to_have_attribute("style", bar_width(5))
    expect(meter).to_contain_text("last model:")
    expect(idle).to_be_visible(timeout=STEP_MS)

    # 3. the comparison and the picker.
    run_from(page, COMPARE, "notebook:run-all-below")
    grid = output(COMPARE).locator(".widget-gridbox")
    columns = grid.locator(":scope > .widget-vbox")
    expect(columns).to_have_count(len(COMPARED), timeout=STEP_MS)
    for column, model in zip(columns.all(), COMPARED, strict=True):
        expect(column.locator(".widget-html").first).to_have_text(model)
        expect(column).to_contain_text("served by")
    expect(day_row).to_contain_text("4/50", timeout=STEP_MS)
    expect(minute_row).to_contain_text("4/20")
    expect(day_row.locator(".progress-bar")).to_have_attribute("style", bar_width(8))
    expect(minute_row.locator(".progress-bar")).to_have_attribute("style", bar_width(20))

    picker = output(PICKER).locator(".widget-vbox").first
    options = picker.locator(".widget-dropdown select option")
    expect(options.first).to_be_attached(timeout=STEP_MS)
    before = options.count()
    picker.locator(".widget-checkbox", has_text="vision").locator("input").check()
    expect(options).not_to_have_count(before, timeout=STEP_MS)
    after = options.count()
    assert 0 < after < before, f"vision filter: {before} options before, {after} after"
    expect(idle).to_be_visible(timeout=STEP_MS)

    # Nothing went to stderr, no traceback, no widget that failed to render.
    notebook = page.locator(".jp-NotebookPanel .jp-Notebook")
    expect(notebook.locator('[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)
    expect(notebook.get_by_text("Error displaying widget")).to_have_count(0)

    meter.screenshot(path=str(shots / "quota-meter.png"))
    grid.screenshot(path=str(shots / "compare-view.png"))
    cells.first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "lab-overview.png"))
