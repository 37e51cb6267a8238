"""Ledger speed: 100,000 single-row appends (each committed, as calls make them) and loading
them all as a DataFrame:

- cold: a fresh Ledger, as a new kernel does: chunk files for the older rows, SQLite for the
  newest few thousand (see openrouter_nb/columnar.py);
- warm: the same Ledger after one more row, as ``orn.log()`` after each call in a notebook;
- rebuild: a fresh Ledger whose chunk folder was deleted (or a ledger written before the
  columnar copy existed): every row read through sqlite3, and the copy written again.

    python benchmarks/ledger.py
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from openrouter_nb import ledger as ledger_module
from openrouter_nb.ledger import Ledger

ROWS = 100_000


def row(n: int) -> dict:
    return dict(call_id=f"{n:012x}", attempt=1, requested_model="openrouter/free",
                served_model="google/gemma-3-27b-it:free", provider="Google AI Studio",
                generation_id=f"gen-1788800000-{n:020d}", status="ok", http_status=200,
                latency_s=0.42, ttft_s=0.1, prompt_tokens=42, completion_tokens=120, cost=0.0,
                sandbox=True, prompt=f"Classify review {n}: the product was fine.",
                response="[sandbox] positive " * 8, account="sandbox", session_id="bench",
                mode="sandbox")


def timed_load(path: Path, *, add_row: bool = False) -> tuple[float, float, int]:
    """Seconds for a fresh Ledger's first ``dataframe()``, then (after one more row) its
    second; and the rows of the first frame."""
    fresh = Ledger(path)
    start = time.perf_counter()
    frame = fresh.dataframe()
    cold = time.perf_counter() - start
    warm = 0.0
    if add_row:
        fresh.record(**row(ROWS))
        start = time.perf_counter()
        assert len(fresh.dataframe()) == len(frame) + 1
        warm = time.perf_counter() - start
    fresh.close()
    return cold, warm, len(frame)


def append_all(path: Path, rows: list[dict]) -> float:
    ledger = Ledger(path)
    start = time.perf_counter()
    for item in rows:
        ledger.record(**item)
    seconds = time.perf_counter() - start
    ledger.close()
    return seconds


def main() -> None:
    rows = [row(n) for n in range(ROWS)]
    with tempfile.TemporaryDirectory() as folder:
        chunk_rows, ledger_module.CHUNK_ROWS = ledger_module.CHUNK_ROWS, ROWS * 10
        bare_s = append_all(Path(folder) / "ledger.sqlite", rows)  # SQLite only, no copy
        ledger_module.CHUNK_ROWS = chunk_rows
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.sqlite"
        append_s = append_all(path, rows)
        ledger = Ledger(path)
        chunks = [rows for *_ignored, rows in ledger._conn.execute(
            "SELECT file, after_id, last_id, rows FROM column_chunks ORDER BY after_id")]
        ledger.close()
        colds, warms = [], []
        for _ in range(3):
            cold, warm, loaded = timed_load(path, add_row=True)
            assert loaded >= ROWS
            colds.append(cold)
            warms.append(warm)
        tracemalloc.start()
        frame = Ledger(path).dataframe()
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        frame_mb = frame.memory_usage(deep=True).sum() / 1e6
        del frame
        rebuilds = []
        for _ in range(3):
            shutil.rmtree(ledger.columns_dir)
            rebuilds.append(timed_load(path)[0])
        again = timed_load(path)[0]
        db_mb = sum(p.stat().st_size for p in Path(folder).glob("ledger.sqlite*") if p.is_file())
        copy_mb = sum(p.stat().st_size for p in ledger.columns_dir.iterdir())
    print(f"{ROWS} appends in {append_s:.2f} s with the columnar copy ({bare_s:.2f} s without: "
          f"x{append_s / bare_s:.2f}); chunk files of {' + '.join(f'{n:,}' for n in chunks)} rows, "
          f"{ROWS - sum(chunks):,} rows in SQLite only; SQLite {db_mb / 1e6:.1f} MB, "
          f"copy {copy_mb / 1e6:.1f} MB")
    print(f"DataFrame of {ROWS} rows, median of 3: cold {statistics.median(colds):.3f} s, "
          f"warm {statistics.median(warms):.3f} s; with the copy deleted "
          f"{statistics.median(rebuilds):.3f} s (SQLite read + copy rewritten), "
          f"then cold again {again:.3f} s")
    print(f"memory of a cold load: peak {peak_mb:.0f} MB allocated for a frame of "
          f"{frame_mb:.0f} MB (tracemalloc; pandas' deep memory_usage)")
    print(f"figure: ledger_appends_per_s = {ROWS / append_s:.0f} rows/s (target >= 5000)")
    print(f"figure: ledger_load_100k_cold = {statistics.median(colds):.3f} s (target <= 0.5)")
    print(f"figure: ledger_load_100k_warm = {statistics.median(warms):.3f} s (target <= 0.5)")
    print(f"figure: ledger_load_100k_without_copy = {statistics.median(rebuilds):.3f} s "
          "(once, after the copy is lost; no target)")


if __name__ == "__main__":
    main()
