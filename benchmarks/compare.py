"""Comparison wall time against the slowest single model (sandbox latencies 300-700 ms).

Each model is first timed alone, then all four are compared in parallel through
``orn.compare``; the figure is parallel wall time / slowest single call (target <= 1.2).

    python benchmarks/compare.py
"""

from __future__ import annotations

import statistics
import tempfile
import time

import openrouter_nb as orn
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.sandbox.catalog import CATALOG
from openrouter_nb.session import Session, set_session

MODELS = ["nvidia/nemotron-nano-9b-v2:free", "openai/gpt-oss-20b:free",
          "google/gemini-2.0-flash-exp:free", "mistralai/mistral-small-3.2-24b-instruct:free"]


def main() -> None:
    latency = {m.id: m.latency_ms for m in CATALOG}
    with SandboxServer(Sandbox(model_latency=True, rpd=10**6)) as server, \
            tempfile.TemporaryDirectory() as home:
        session = Session(api_key=sandbox_key("compare"), base_url=server.base_url,
                          sandbox=False, home=home, retries=0)
        set_session(session)
        singles = {}
        for model in MODELS:
            start = time.perf_counter()
            session.ask("Compare me", model, max_tokens=1024)  # gpt-oss thinks first
            singles[model] = time.perf_counter() - start
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            frame = orn.compare("Compare me", MODELS, max_tokens=1024)
            walls.append(time.perf_counter() - start)
            assert (frame["status"] == "ok").all()
        session.close()
    slowest = max(singles.values())
    for model in MODELS:
        print(f"{model:48} sandbox latency {latency[model]} ms, alone {singles[model]:.3f} s")
    wall = statistics.median(walls)
    print(f"parallel compare of {len(MODELS)} models: {wall:.3f} s (median of 3)")
    print(f"figure: compare_wall_over_slowest = {wall / slowest:.3f} x (target <= 1.2)")


if __name__ == "__main__":
    main()
