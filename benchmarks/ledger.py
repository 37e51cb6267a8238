"""Ledger speed: 100,000 single-row appends (each committed, as calls make them) and loading
them all as a DataFrame: cold (a fresh Ledger reads the whole file, as a new kernel does) and
warm (the same Ledger after one more row, as ``orn.log()`` after each call in a notebook).

    python benchmarks/ledger.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "ledger.sqlite")
        rows = [row(n) for n in range(ROWS)]
        start = time.perf_counter()
        for item in rows:
            ledger.record(**item)
        append_s = time.perf_counter() - start
        colds, warms = [], []
        for _ in range(3):
            fresh = Ledger(Path(folder) / "ledger.sqlite")
            start = time.perf_counter()
            frame = fresh.dataframe()
            colds.append(time.perf_counter() - start)
            fresh.record(**row(ROWS))
            start = time.perf_counter()
            warm = fresh.dataframe()
            warms.append(time.perf_counter() - start)
            fresh.close()
        assert len(frame) >= ROWS and len(warm) == len(frame) + 1
        size_mb = sum(p.stat().st_size for p in Path(folder).glob("ledger.sqlite*")) / 1e6
    print(f"{ROWS} appends in {append_s:.2f} s; file {size_mb:.1f} MB; DataFrame load, median "
          f"of 3: cold {statistics.median(colds):.3f} s, warm {statistics.median(warms):.3f} s")
    print(f"figure: ledger_appends_per_s = {ROWS / append_s:.0f} rows/s (target >= 5000)")
    print(f"figure: ledger_load_100k_cold = {statistics.median(colds):.3f} s (target <= 0.5)")
    print(f"figure: ledger_load_100k_warm = {statistics.median(warms):.3f} s (target <= 0.5)")


if __name__ == "__main__":
    main()
