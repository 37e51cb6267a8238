"""Opening the ledger: many kernels creating the same new file at once all get a working
ledger (SQLite does not wait on the busy timeout while the journal mode changes)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path
from typing import Any

from openrouter_nb.ledger import Ledger

KERNELS = 8
ROUNDS = 12


def _open_in_rounds(barrier: Any, folder: str, rounds: int, results: Any) -> None:
    """A kernel: in each round, wait for all the others, then open a brand-new ledger."""
    for number in range(rounds):
        barrier.wait(timeout=120)
        try:
            ledger = Ledger(Path(folder) / f"round-{number}.sqlite")
            ledger.record(call_id=f"{os.getpid()}-{number}", status="ok")
            ledger.close()
            results.put((number, "ok"))
        except Exception as exc:  # reported to the test, which names it
            results.put((number, f"{type(exc).__name__}: {exc}"))


def test_kernels_opening_a_new_ledger_together_all_succeed(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")  # as on macOS and Windows
    barrier, results = spawn.Barrier(KERNELS), spawn.Queue()
    kernels = [spawn.Process(target=_open_in_rounds, args=(barrier, str(tmp_path), ROUNDS, results))
               for _ in range(KERNELS)]
    for kernel in kernels:
        kernel.start()
    outcomes = [results.get(timeout=180) for _ in range(KERNELS * ROUNDS)]
    for kernel in kernels:
        kernel.join(timeout=60)
    failures = sorted({outcome for _, outcome in outcomes if outcome != "ok"})
    assert failures == [] and [k.exitcode for k in kernels] == [0] * KERNELS
    for number in range(ROUNDS):
        with sqlite3.connect(tmp_path / f"round-{number}.sqlite") as conn:
            assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == KERNELS
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
