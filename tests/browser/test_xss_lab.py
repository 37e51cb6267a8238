"""The XSS corpus rendered by a real JupyterLab in a real (headless) chromium.

JupyterLab trusts the outputs of a cell the user has just run (it runs their scripts), so this
is the attack as it would happen. A generated notebook displays every payload of
``tests/data/xss_corpus.py`` as the final answer (``answer_bundle``), as ``Answer``'s own repr
and in one compare view. Then the browser is asked: no dialog was opened (the payloads call
``alert``), the page did not navigate, and no element in any output is a script, frame,
object, form, style, base or meta element, carries an ``on*`` attribute, or links or loads a
URL whose protocol (as chromium itself resolves it) is not allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.data.xss_corpus import PAYLOADS

from .test_lab import KERNEL_IDLE, KERNEL_START_MS, LAB_LOAD_MS, STEP_MS, run_from

if TYPE_CHECKING:
    from .conftest import LabServer

NOTEBOOK = "xss-check.ipynb"
DONE = "xss corpus displayed"
SETUP = """from IPython.display import display
from openrouter_nb.answer import Answer
from openrouter_nb.notebook.compare_view import CompareView
from openrouter_nb.notebook.display import answer_bundle

PAYLOADS = {payloads!r}
answers = [Answer(text=text, model="m/a:free", requested_model="m/a:free", provider=None,
                  usage={{}}, latency_s=0.0, call_id=str(i), attempts=1, sandbox=True)
           for i, text in enumerate(PAYLOADS)]"""
PER_CELL = 20  # two outputs each: JupyterLab shows at most 50 outputs of a cell
SHOW = """for answer in answers[{start}:{start} + {count}]:
    display(answer)
    display(answer_bundle(answer, "markdown")[0], raw=True)"""
COMPARE = 'CompareView([f"m/{i}:free" for i in range(len(answers))], answers)'
MARK = f"print({DONE!r})"

FINDINGS_JS = """() => {
    const forbidden = new Set(['script', 'iframe', 'frame', 'object', 'embed', 'style', 'base',
                               'meta', 'form', 'link', 'svg', 'math', 'template', 'input',
                               'button', 'textarea', 'applet']);
    const notebook = document.querySelector('.jp-NotebookPanel .jp-Notebook');
    const found = [];
    for (const el of notebook.querySelectorAll('.jp-OutputArea-output *')) {
        const tag = el.tagName.toLowerCase();
        if (forbidden.has(tag)) found.push('element ' + tag);
        for (const attr of el.attributes) {
            if (attr.name.startsWith('on')) found.push(`attribute ${attr.name} on ${tag}`);
        }
        if (tag === 'a' && el.hasAttribute('href')
                && !['http:', 'https:', 'mailto:'].includes(new URL(el.href).protocol)) {
            found.push('href ' + el.getAttribute('href'));
        }
        if (tag === 'img' && !['http:', 'https:'].includes(new URL(el.src).protocol)
                && !/^data:image\\/(png|jpeg|gif|webp)[;,]/i.test(el.src)) {
            found.push('src ' + el.getAttribute('src'));
        }
    }
    return {found, rendered: notebook.querySelectorAll('.jp-OutputArea-output .orn-md').length};
}"""


def write_notebook(path: Any) -> None:
    import nbformat

    cells = [SETUP.format(payloads=[text for _, text in PAYLOADS]),
             *(SHOW.format(start=start, count=PER_CELL)
               for start in range(0, len(PAYLOADS), PER_CELL)),
             COMPARE, MARK]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"},
                  "language_info": {"name": "python"}})
    nbformat.write(notebook, path)


def test_corpus_runs_nothing_in_jupyterlab(lab_server: LabServer, page: Any) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    write_notebook(lab_server.root / NOTEBOOK)
    # A workspace of its own, reset: only this notebook is open (the server is shared).
    page.goto(f"{lab_server.url}/lab/workspaces/xss/tree/{NOTEBOOK}?reset", timeout=LAB_LOAD_MS)
    page.wait_for_function("window.jupyterapp !== undefined", timeout=LAB_LOAD_MS)
    idle = page.locator(".jp-StatusBar-TextItem", has_text=KERNEL_IDLE)
    expect(idle).to_be_visible(timeout=KERNEL_START_MS)
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    count = 3 + -(-len(PAYLOADS) // PER_CELL)
    expect(cells).to_have_count(count)

    run_from(page, 0, "notebook:run-all-cells")
    expect(cells.nth(count - 1).locator(".jp-OutputArea")).to_contain_text(
        DONE, timeout=STEP_MS * 2)
    expect(idle).to_be_visible(timeout=STEP_MS)

    result = page.evaluate(FINDINGS_JS)
    assert result["rendered"] >= 3 * len(PAYLOADS)  # two displays and a column per payload
    assert result["found"] == []
    assert dialogs == []
    assert page.url.startswith(f"{lab_server.url}/lab/workspaces/xss")  # no navigation
