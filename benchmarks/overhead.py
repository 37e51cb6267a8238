"""Per-request overhead of ``Session.ask`` over raw httpx, and the cost of importing us.

Both clients talk to the same sandbox server on loopback in the same run, interleaved in
many short rounds that alternate which goes first; the figure is the median over rounds of
(ours - raw), so a burst of load from elsewhere on the machine lands on both sides of a pair
instead of on one side's whole sample. ``orn`` includes everything a user gets: options,
the privacy guard, request building, parsing, pacing bookkeeping and the committed SQLite
ledger row.

    python benchmarks/overhead.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

MODEL = "meta-llama/llama-3.3-70b-instruct:free"
ROUNDS, PER_ROUND = 41, 15


def time_raw(client: httpx.Client, body: dict) -> tuple[float, float]:
    """ms per request: (wall clock, CPU time of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(PER_ROUND):
        response = client.post("chat/completions", json=body)
        response.raise_for_status()
        response.json()["choices"][0]["message"]["content"]
    return ((time.perf_counter() - start) / PER_ROUND * 1000,
            (time.process_time() - cpu) / PER_ROUND * 1000)


def time_orn(session: Session, prompt: str) -> tuple[float, float]:
    """ms per request: (wall clock, CPU time of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(PER_ROUND):
        session.ask(prompt, MODEL, max_tokens=64)
    return ((time.perf_counter() - start) / PER_ROUND * 1000,
            (time.process_time() - cpu) / PER_ROUND * 1000)


def import_ms() -> tuple[float, bool]:
    """Median self-reported cumulative import time of openrouter_nb (``-X importtime``)."""
    samples, heavy = [], False
    # A user's Python caches compiled modules; a shell that says not to would time compiling.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import openrouter_nb"], env=env, check=True)
    code = ("import openrouter_nb, sys; "
            "print(any(m in sys.modules for m in ('pandas', 'ipywidgets', 'httpx')))")
    for _ in range(7):
        run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env,
                             capture_output=True, text=True, check=True)
        heavy = heavy or run.stdout.strip() == "True"
        for line in run.stderr.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == "openrouter_nb":
                samples.append(int(parts[1]) / 1000)
    return statistics.median(samples), heavy


def main() -> None:
    sandbox = Sandbox(seed=1, rpm=10**9, rpd=10**9)
    with SandboxServer(sandbox) as server, tempfile.TemporaryDirectory() as home:
        key = sandbox_key("bench")
        body = {"model": MODEL, "max_tokens": 64,
                "messages": [{"role": "user", "content": "Say something about overhead"}]}
        raw = httpx.Client(base_url=server.base_url + "/",
                           headers={"Authorization": f"Bearer {key}"})
        session = Session(api_key=key, base_url=server.base_url, sandbox=False, home=home,
                          retries=0, rpm=10**9)
        time_raw(raw, body), time_orn(session, "warm up")  # connections, caches
        raw_ms, orn_ms, diffs, cpu_diffs = [], [], [], []
        for round_ in range(ROUNDS):
            if round_ % 2 == 0:
                raw_round = time_raw(raw, body)
            orn_round = time_orn(session, "Say something about overhead")
            if round_ % 2 == 1:
                raw_round = time_raw(raw, body)
            raw_ms.append(raw_round[0])
            orn_ms.append(orn_round[0])
            diffs.append(orn_round[0] - raw_round[0])
            cpu_diffs.append(orn_round[1] - raw_round[1])
        raw.close()
        rows = len(session.ledger)
        session.close()
    raw_med, orn_med = statistics.median(raw_ms), statistics.median(orn_ms)
    imp, heavy = import_ms()
    print(f"raw httpx      : {raw_med:.3f} ms/request (median of {ROUNDS} rounds of {PER_ROUND})")
    print(f"orn Session.ask: {orn_med:.3f} ms/request, {rows} ledger rows written")
    print(f"httpx/pandas/ipywidgets imported by 'import openrouter_nb': {heavy}")
    print(f"difference of the medians: {orn_med - raw_med:.3f} ms (for comparison)")
    print(f"figure: overhead_per_request = {statistics.median(diffs):.3f} ms (target <= 1.0)")
    print(f"figure: overhead_ratio = {orn_med / raw_med:.3f} x (informational)")
    # CPU time of this process (client and in-process server): what our code costs, steadier
    # than the wall clock when other processes share the machine.
    print(f"figure: overhead_cpu_per_request = {statistics.median(cpu_diffs):.3f} ms "
          "(informational)")
    print(f"figure: import_openrouter_nb = {imp:.1f} ms (target <= 150)")


if __name__ == "__main__":
    main()
