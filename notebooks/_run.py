"""Execute tutorial notebooks the way nbval will, and save their outputs.

    python notebooks/_run.py notebooks/01-getting-started.ipynb [more.ipynb ...]

Each notebook runs in a fresh kernel with the test environment of the root ``conftest.py``:
the in-process sandbox (``OPENROUTER_NB_SANDBOX=1``), final-only answer display
(``OPENROUTER_NB_STREAM_DISPLAY=final``), no key or base URL, and a fresh, empty
``OPENROUTER_NB_HOME``. The working directory is the notebook's folder. Stored outputs are
what ``pytest --nbval`` then compares against, so regenerate them after editing a lesson.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(path: Path) -> None:
    home = tempfile.mkdtemp(prefix=f"orn-{path.stem}-")
    saved = dict(os.environ)
    try:
        for name in ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_NB_REPLAY"):
            os.environ.pop(name, None)
        os.environ["OPENROUTER_NB_SANDBOX"] = "1"
        os.environ["OPENROUTER_NB_STREAM_DISPLAY"] = "final"
        os.environ["OPENROUTER_NB_HOME"] = home
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
        nbformat.write(nb, path)
        print(f"executed {path} ({sum(c.cell_type == 'code' for c in nb.cells)} code cells)")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(str(p) for p in Path(__file__).parent.glob("[0-9]*.ipynb")):
        run(Path(name).resolve())
