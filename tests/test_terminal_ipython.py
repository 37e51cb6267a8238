"""Real terminal IPython (``TerminalInteractiveShell``, in a subprocess): plain text only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ERASE = "\r\x1b[2K"


def ipython(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env.update(OPENROUTER_NB_SANDBOX="1", OPENROUTER_NB_HOME=str(home),
               OPENROUTER_NB_STREAM_DISPLAY="live", OPENROUTER_NB_SANDBOX_SPEED="instant")
    env.pop("PYTEST_CURRENT_TEST", None)
    done = subprocess.run([sys.executable, "-m", "IPython", "--ext", "openrouter_nb",
                           "--no-banner", "--colors=nocolor", *args], env=env, cwd=home,
                          capture_output=True, timeout=120)  # bytes: keep the \r
    assert done.returncode == 0 and done.stderr == b"", done.stderr[-2000:]
    return done.stdout.decode()


def test_terminal_streams_once_and_logs_with_status(tmp_path: Path) -> None:
    cell = tmp_path / "ask.ipy"
    cell.write_text("%%openrouter -m google/gemma-3-27b-it:free\n"
                    "Explain SSE in three sentences.\n")
    out = ipython(tmp_path, str(cell))
    head = f"◷ asking google/gemma-3-27b-it:free…{ERASE}"
    assert out.startswith(head)
    text, footer = out[len(head):].rsplit("\n\n", 1)
    assert text.startswith("[sandbox] Simulated answer from google/gemma-3-27b-it:free")
    assert out.count(text[:60]) == 1  # written once, not a growing copy per update
    assert footer.startswith("google/gemma-3-27b-it:free · ") and footer.endswith(
        "sandbox: simulated answer\n")
    assert "▌" not in out and "<" not in out and "Out[" not in out

    log = ipython(tmp_path, "-c", "%openrouter log")
    lines = log.splitlines()
    assert lines[1].split() == ["time", "model", "latency", "tokens", "error", "prompt"]
    assert " ✓  gemma-3-27b-it:free " in lines[2]
    assert lines[2].endswith("Explain SSE in three sentences.")

    picker = ipython(tmp_path, "-c", "%openrouter picker")
    assert "ModelPicker(" not in picker and "google/gemma-3-27b-it:free" in picker
    assert "To pin one:" in picker
