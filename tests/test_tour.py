"""``python -m openrouter_nb tour``: the lesson's outputs and nothing else (no kernel warnings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_tour_prints_no_warning_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env["OPENROUTER_NB_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "openrouter_nb", "tour"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""  # ipykernel's "running over TCP without encryption" is gone
    lines = done.stdout.splitlines()
    assert lines[1].startswith("# 01 · Getting started")
    assert not [line for line in lines if "WARNING" in line or "Traceback" in line]
    assert "sandbox: simulated answer" in done.stdout
    assert f"Ledger: {tmp_path}/ledger.sqlite" in done.stdout
    assert not list(REPO.glob("notebooks/kernel*"))  # the IPC sockets live in a temp folder
