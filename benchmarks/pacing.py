"""Pacing: 200 requests through Session against a sandbox whose limit is scaled in time.

The sandbox allows 20 requests per 2 s (the free tier's 20/min, 30x faster). A sliding
window of that size lets N requests go out, at best, in (ceil(N/20) - 1) windows after the
first one; the figure is that ideal span divided by the span we achieved (1.0 = perfect),
plus how many quota 429s the sandbox had to send (target: none).

    python benchmarks/pacing.py
"""

from __future__ import annotations

import math
import tempfile
import time

from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

N, RPM, WINDOW_S = 200, 20, 2.0
MODEL = "openai/gpt-oss-20b:free"


def main() -> None:
    sandbox = Sandbox(rpm=RPM, window_s=WINDOW_S, rpd=10**6)
    with SandboxServer(sandbox) as server, tempfile.TemporaryDirectory() as home:
        session = Session(api_key=sandbox_key("pacing"), base_url=server.base_url,
                          sandbox=False, home=home, retries=2, rpm=RPM, window_s=WINDOW_S)
        sent: list[float] = []
        for n in range(N):
            sent.append(time.monotonic())
            session.ask(f"request {n}", MODEL, max_tokens=512)  # room to think: gpt-oss reasons
        session.close()
    statuses = [r.status for r in sandbox.requests if r.path.endswith("/chat/completions")]
    quota_429 = sum(1 for s in statuses if s == 429)
    achieved_span = sent[-1] - sent[0]
    ideal_span = (math.ceil(N / RPM) - 1) * WINDOW_S
    print(f"{N} requests, limit {RPM} per {WINDOW_S:g} s: last sent {achieved_span:.2f} s after "
          f"the first (ideal {ideal_span:.2f} s); mean rate {N / achieved_span:.2f}/s")
    print(f"figure: achieved_over_allowed_rate = {ideal_span / achieved_span:.3f} (target >= 0.97)")
    print(f"figure: quota_429s = {quota_429} count (target == 0)")


if __name__ == "__main__":
    main()
