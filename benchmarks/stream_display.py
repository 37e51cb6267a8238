"""Streaming display cost: a 2,000-chunk answer through ``%%openrouter`` vs raw httpx.

A SandboxServer on loopback (``python -m openrouter_nb.sandbox`` in its own process, so the
server's thread does not compete with the consumer for the GIL) streams the same 2,000-token
answer (header
``X-Sandbox-Answer-Tokens``) to (a) the real ``%%openrouter`` magic in live streaming mode with
the real clock and a display target that only counts updates, and (b) a bare
``httpx.Client.stream(...).iter_lines()`` loop that decodes each event's JSON and keeps the
text (the least any consumer must do). Both run ``REPEATS`` times, interleaved; the
medians are compared. A last, paced run spreads the same stream over ``PACED_MS`` (header
``X-Sandbox-Latency-Ms``), so the update throttle is measured on a stream that lasts seconds.
No network: everything is on 127.0.0.1.

    python benchmarks/stream_display.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from openrouter_nb.notebook.display import STREAM_ENV  # noqa: E402
from openrouter_nb.sandbox import sandbox_key  # noqa: E402
from openrouter_nb.session import Session, set_session  # noqa: E402

CHUNKS = 2000
REPEATS = 7
PACED_MS = 3000
HEADERS = {"X-Sandbox-Answer-Tokens": str(CHUNKS)}


class CountingTarget:
    """Counts what a frontend would receive, renders nothing."""

    def __init__(self) -> None:
        self.shows = 0
        self.updates = 0

    def show(self, bundle: dict[str, str], *, updatable: bool) -> None:
        self.shows += 1

    def update(self, bundle: dict[str, str]) -> None:
        self.updates += 1


def run_magic(ip: InteractiveShell, targets: list[CountingTarget]) -> float:
    started = time.perf_counter()
    with capture_output():
        ip.run_cell_magic("openrouter", f"--max-tokens {CHUNKS * 2}", "Tell me a long story")
    elapsed = time.perf_counter() - started
    assert targets[-1].updates > 0, "the magic did not stream"
    return elapsed


def run_ask(session: Session) -> float:
    """The same call without the notebook layer: what the display itself adds is the gap."""
    started = time.perf_counter()
    session.ask("Tell me a long story", stream=True, max_tokens=CHUNKS * 2)
    return time.perf_counter() - started


def run_raw(client: httpx.Client, key: str) -> tuple[float, int]:
    body = {"model": "openrouter/free", "stream": True, "max_tokens": CHUNKS * 2,
            "messages": [{"role": "user", "content": "Tell me a long story"}]}
    started = time.perf_counter()
    lines = 0
    with client.stream("POST", "chat/completions", json=body,
                       headers={"Authorization": f"Bearer {key}", **HEADERS}) as response:
        response.raise_for_status()
        parts = []
        for line in response.iter_lines():
            # The least any consumer must do: decode each event and keep its text.
            if line.startswith("data: ") and line != "data: [DONE]":
                lines += 1
                for choice in json.loads(line[6:]).get("choices") or []:
                    parts.append((choice.get("delta") or {}).get("content") or "")
        "".join(parts)
    return time.perf_counter() - started, lines


def start_server() -> tuple[subprocess.Popen[str], str]:
    """``python -m openrouter_nb.sandbox --port 0``; returns the process and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openrouter_nb.sandbox", "--port", "0", "--rpm", "100000",
         "--rpd", "1000000"], stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "openrouter_nb sandbox: OPENROUTER_BASE_URL=... ..."
    base_url = line.split("OPENROUTER_BASE_URL=")[1].split()[0]
    return proc, base_url


def main() -> int:
    os.environ.pop(STREAM_ENV, None)  # live streaming, as in a real notebook
    os.environ.pop("OPENROUTER_NB_SANDBOX", None)
    home = tempfile.mkdtemp(prefix="orn-bench-stream-")
    server, base_url = start_server()
    key = sandbox_key("bench")
    session = Session(api_key=key, base_url=base_url, sandbox=False, home=home, rpm=100_000)
    session.client._http.headers.update(HEADERS)  # the magic has no header flag
    set_session(session)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openrouter_nb")
    magics = ip.magics_manager.registry["OpenRouterMagics"]
    targets: list[CountingTarget] = []

    def factory() -> CountingTarget:
        targets.append(CountingTarget())
        return targets[-1]

    magics.target_factory = factory
    magic_times: list[float] = []
    raw_times: list[float] = []
    ask_times: list[float] = []
    try:
        with httpx.Client(base_url=base_url + "/", timeout=60) as client:
            run_magic(ip, targets)  # warm-up: imports, connection, ledger file
            run_raw(client, key)
            for _ in range(REPEATS):
                magic_times.append(run_magic(ip, targets))
                elapsed, lines = run_raw(client, key)
                raw_times.append(elapsed)
                ask_times.append(run_ask(session))
        updates_fast = statistics.median(t.shows + t.updates for t in targets[1:])
        session.client._http.headers["X-Sandbox-Latency-Ms"] = str(PACED_MS)
        paced_s = run_magic(ip, targets)
        rows = session.ledger.rows(newest_first=True, limit=1)
        assert rows[0]["completion_tokens"] == CHUNKS, rows[0]
        assert lines >= CHUNKS, lines
    finally:
        session.close()
        server.terminate()
        server.wait(timeout=10)
        InteractiveShell.clear_instance()
    updates_paced = targets[-1].shows + targets[-1].updates
    magic_s, raw_s = statistics.median(magic_times), statistics.median(raw_times)
    ask_s = statistics.median(ask_times)
    print(f"chunks per answer: {CHUNKS}, repeats: {REPEATS}")
    print(f"magic (live display, real clock): median {magic_s * 1000:.1f} ms; "
          f"Session.ask(stream=True), no display: median {ask_s * 1000:.1f} ms; "
          f"raw httpx iter_lines: median {raw_s * 1000:.1f} ms")
    print(f"notebook layer on top of Session.ask: {magic_s / ask_s:.2f} x")
    print(f"display outputs per answer: median {updates_fast:.0f} (fast stream), "
          f"{updates_paced} (stream paced over {paced_s:.1f} s)")
    print(f"figure: stream_display_updates = {max(updates_fast, updates_paced):.0f} updates "
          "(target <= 60)")
    print(f"figure: stream_display_time_ratio = {magic_s / raw_s:.2f} x (target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
