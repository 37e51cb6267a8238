"""``python -m openrouter_nb tour``: run the getting-started notebook and print what it shows.

The tour runs in the sandbox unless ``--live`` is given (then ``OPENROUTER_API_KEY`` is
used). Needs the ``notebook`` extra (ipykernel, nbclient).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_NOTEBOOK = Path("notebooks") / "01-getting-started.ipynb"


def _text_of(output: dict[str, Any]) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n"
    data = output.get("data", {})
    for mime in ("text/plain", "text/markdown"):
        if mime in data:
            value = data[mime]
            return ("".join(value) if isinstance(value, list) else str(value)) + "\n"
    return ""


def _ipc_config(folder: Path) -> Any:
    """Kernel sockets as files in ``folder`` (IPC), not TCP on loopback.

    Only this process can reach them, and ipykernel then prints no "Kernel is running over
    TCP without encryption" warning as the tour's first line.
    """
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(folder / "kernel")
    return config


def tour(path: Path, *, live: bool, save: Path | None) -> int:
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        print("The tour needs the notebook extra: pip install -e '.[notebook]'", file=sys.stderr)
        return 2
    if not path.exists():
        print(f"No notebook at {path}; run this from the repository folder or pass a path.",
              file=sys.stderr)
        return 2
    if not live:
        os.environ["OPENROUTER_NB_SANDBOX"] = "1"
    os.environ.setdefault("OPENROUTER_NB_STREAM_DISPLAY", "final")
    os.environ.setdefault("OPENROUTER_NB_HOME", tempfile.mkdtemp(prefix="openrouter-nb-tour-"))
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="openrouter-nb-kernel-") as sockets:
        client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}},
                                config=_ipc_config(Path(sockets)))
        client.execute()
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            if first.startswith("#"):
                print(f"\n{first}")
            continue
        if cell.cell_type != "code":
            continue
        print("\n>>> " + cell.source.replace("\n", "\n... "))
        for output in cell.get("outputs", []):
            text = _text_of(output)
            if text:
                print(text, end="")
    if save:
        nbformat.write(notebook, save)
        print(f"\nExecuted notebook saved to {save}")
    print(f"\nLedger: {os.environ['OPENROUTER_NB_HOME']}/ledger.sqlite")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openrouter_nb")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("tour", help="run the getting-started notebook and print it")
    run.add_argument("notebook", nargs="?", type=Path, default=DEFAULT_NOTEBOOK)
    run.add_argument("--live", action="store_true", help="use OPENROUTER_API_KEY, not the sandbox")
    run.add_argument("--save", type=Path, help="also save the executed notebook here")
    args = parser.parse_args(argv)
    return tour(args.notebook, live=args.live, save=args.save)


if __name__ == "__main__":
    sys.exit(main())
