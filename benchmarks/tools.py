"""Per-step overhead of a tool task over raw httpx running the same loop by hand.

Both sides run the same two-step task against the same sandbox server on loopback: ask with
two tools, run the tool the model asked for, send the assistant message and the ``tool``
message back, read the answer. Raw httpx builds the tool declarations by hand once, posts,
parses the arguments with ``json.loads`` and calls the function. ``Session.ask(tools=...)``
does it through our whole stack: the tool declarations from the signatures, the quota
estimate before the task, for each step the pipeline (options, privacy guard over every part,
context check, request building, parsing, pacing bookkeeping, a committed ledger row with
``task_id``, ``step`` and the tool calls), argument validation against the schema, and the
``Answer`` with its steps. Rounds alternate which side goes first; the figure is the median
over rounds of (ours - raw) divided by the number of steps, so the sandbox's own time (the
same for both) is left out.

    python benchmarks/tools.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from typing import Any

import httpx

from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

MODEL = "openai/gpt-oss-20b:free"  # reliability 1.0: its arguments always fit
ROUNDS = 41
STEPS = 2


def multiply(a: int, b: int) -> int:
    """Multiply two whole numbers.

    Args:
        a: the first number
        b: the second number
    """
    return a * b


def capital(country: str) -> str:
    """Look up the capital city of a country."""
    return {"Norway": "Oslo"}.get(country, "unknown")


TOOLS = [
    {"type": "function", "function": {
        "name": "multiply", "description": "Multiply two whole numbers.",
        "parameters": {"type": "object", "properties": {
            "a": {"type": "integer", "description": "the first number"},
            "b": {"type": "integer", "description": "the second number"}},
            "required": ["a", "b"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "capital", "description": "Look up the capital city of a country.",
        "parameters": {"type": "object", "properties": {"country": {"type": "string"}},
                       "required": ["country"], "additionalProperties": False}}},
]
FUNCTIONS = {"multiply": multiply, "capital": capital}


def question(round_: int) -> str:
    return f"Please multiply {round_ + 6} by {round_ + 7} for me."


def raw_task(client: httpx.Client, round_: int) -> float:
    """Seconds for the loop by hand (no ledger, no checks)."""
    start = time.perf_counter()
    messages: list[dict[str, Any]] = [{"role": "user", "content": question(round_)}]
    for _ in range(STEPS):
        response = client.post("chat/completions", json={
            "model": MODEL, "max_tokens": 4096, "messages": messages, "tools": TOOLS})
        response.raise_for_status()
        message = response.json()["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        if not calls:
            break
        messages.append(message)
        for call in calls:
            args = json.loads(call["function"]["arguments"] or "{}")
            result = FUNCTIONS[call["function"]["name"]](**args)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": str(result)})
    return time.perf_counter() - start


def orn_task(session: Session, round_: int) -> float:
    start = time.perf_counter()
    answer = session.ask(question(round_), MODEL, tools=[multiply, capital])
    elapsed = time.perf_counter() - start
    assert len(answer.steps) == STEPS, answer.trace_text()
    return elapsed


def main() -> None:
    sandbox = Sandbox(seed=1, rpm=10**9, rpd=10**9)
    with SandboxServer(sandbox) as server, tempfile.TemporaryDirectory() as home:
        key = sandbox_key("bench")
        raw = httpx.Client(base_url=server.base_url + "/",
                           headers={"Authorization": f"Bearer {key}"})
        session = Session(api_key=key, base_url=server.base_url, sandbox=False, home=home,
                          retries=0, rpm=10**9, rpd=10**9)
        raw_task(raw, 0), orn_task(session, 0)  # connections, catalog
        overhead, raw_step = [], []
        for round_ in range(1, ROUNDS + 1):
            if round_ % 2:
                theirs, ours = raw_task(raw, round_), orn_task(session, round_)
            else:
                ours = orn_task(session, round_)
                theirs = raw_task(raw, round_)
            overhead.append((ours - theirs) * 1000 / STEPS)
            raw_step.append(theirs * 1000 / STEPS)
        raw.close()
        rows = len(session.ledger)
        session.close()
    print(f"{ROUNDS} rounds of a {STEPS}-step tool task each side; raw httpx "
          f"{statistics.median(raw_step):.3f} ms/step (the sandbox's answer included); "
          f"{rows} ledger rows written")
    print(f"figure: tool_step_overhead = {statistics.median(overhead):.3f} ms (target <= 1.5)")


if __name__ == "__main__":
    main()
