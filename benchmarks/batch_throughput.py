"""Batch and async throughput against the sandbox server on loopback (issue 18).

Three figures, same run:

1. Free model, each model's typical latency (``--model-latency``), a short window
   (``--window-s 6 --rpm 20``), 60 rows through ``Session.batch``: rows per second over the
   allowed rate (20 per 6 s = 3.33/s; target >= 0.97) and the quota 429s the sandbox had to
   send (target 0). Before issue 18 the batch sent one row at a time: 0.31.
2. Paid model, 1 s latency, 200 rows through ``Session.batch`` (default concurrency, 16):
   its wall time over that of a plain asyncio + httpx loop with 16 requests in flight against
   the same server (target <= 1.15; before: ~15).
3. 200 ``Session.aask`` calls gathered, over the same raw loop (target <= 1.15).

    python benchmarks/batch_throughput.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time

import httpx
import pandas as pd

from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

FREE = "meta-llama/llama-3.3-70b-instruct:free"
PAID = "meta-llama/llama-3.3-70b-instruct"
FREE_ROWS, RPM, WINDOW_S = 60, 20, 6.0
PAID_ROWS, IN_FLIGHT = 200, 16


def free_batch() -> None:
    sandbox = Sandbox(rpm=RPM, window_s=WINDOW_S, rpd=10**6, model_latency=True)
    with SandboxServer(sandbox) as server, tempfile.TemporaryDirectory() as home:
        session = Session(api_key=sandbox_key("throughput-free"), base_url=server.base_url,
                          sandbox=False, home=home, retries=2, rpm=RPM, window_s=WINDOW_S,
                          rpd=10**6)
        frame = pd.DataFrame({"text": [f"review {n}" for n in range(FREE_ROWS)]})
        start = time.perf_counter()
        result = session.batch(frame, "Label: {text}", model=FREE, max_tokens=64, progress=None)
        elapsed = time.perf_counter() - start
        session.close()
    chats = [r for r in sandbox.requests if r.path.endswith("/chat/completions")]
    quota_429 = sum(1 for r in chats if r.status == 429)
    answered = int((result["answer_status"] == "ok").sum())
    allowed = RPM / WINDOW_S
    print(f"free: {answered}/{FREE_ROWS} rows in {elapsed:.2f} s = {FREE_ROWS / elapsed:.2f} rows/s; "
          f"allowed {allowed:.2f}/s ({RPM} per {WINDOW_S:g} s); {len(chats)} requests")
    print(f"figure: free_batch_rate_over_allowed = {FREE_ROWS / elapsed / allowed:.3f} "
          "(target >= 0.97)")
    print(f"figure: free_batch_quota_429s = {quota_429} count (target == 0)")


async def raw_loop(base_url: str, key: str) -> float:
    """200 requests, 16 in flight, plain httpx: the reference wall time."""
    limit = asyncio.Semaphore(IN_FLIGHT)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url + "/", headers=headers, timeout=60) as client:
        async def one(n: int) -> None:
            async with limit:
                body = {"model": PAID, "max_tokens": 64,
                        "messages": [{"role": "user", "content": f"Label: raw {n}"}]}
                response = await client.post("chat/completions", json=body)
                response.raise_for_status()
                response.json()["choices"][0]["message"]["content"]

        start = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(PAID_ROWS)))
        return time.perf_counter() - start


async def gathered(session: Session) -> float:
    start = time.perf_counter()
    answers = await asyncio.gather(*(session.aask(f"Label: async {n}", PAID, max_tokens=64)
                                     for n in range(PAID_ROWS)))
    assert len(answers) == PAID_ROWS
    return time.perf_counter() - start


def paid() -> None:
    sandbox = Sandbox(latency_ms=1000, credits=100, rpd=10**6)
    key = sandbox_key("throughput-paid")
    with SandboxServer(sandbox) as server, tempfile.TemporaryDirectory() as home:
        raw_s = asyncio.run(raw_loop(server.base_url, key))
        session = Session(api_key=key, base_url=server.base_url, sandbox=False, home=home,
                          retries=2)
        frame = pd.DataFrame({"text": [f"row {n}" for n in range(PAID_ROWS)]})
        start = time.perf_counter()
        result = session.batch(frame, "Label: {text}", model=PAID, max_tokens=64, progress=None)
        batch_s = time.perf_counter() - start
        async_s = asyncio.run(gathered(session))
        session.close()
    assert (result["answer_status"] == "ok").all(), result["answer_status"].value_counts()
    print(f"paid, 1 s latency, {PAID_ROWS} rows: asyncio+httpx ({IN_FLIGHT} in flight) "
          f"{raw_s:.2f} s; orn.batch {batch_s:.2f} s; {PAID_ROWS} aask gathered {async_s:.2f} s")
    print(f"figure: paid_batch_over_raw_async = {batch_s / raw_s:.3f} (target <= 1.15)")
    print(f"figure: aask_gather_over_raw_async = {async_s / raw_s:.3f} (target <= 1.15)")


if __name__ == "__main__":
    free_batch()
    paid()
