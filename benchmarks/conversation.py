"""Per-turn overhead of a 20-turn ``Conversation`` over raw httpx sending the same history.

Both sides hold the same 20-turn conversation with the same sandbox server on loopback: raw
httpx keeps a list of messages, appends each question, posts the whole list and appends the
answer's message; ``Conversation.ask`` does the same through our whole stack (options, the
privacy guard over every part sent, the context check against the catalog, request building,
parsing, pacing bookkeeping and the committed ledger row with the turn's messages). Rounds
alternate which side goes first, and each round asks new questions (so the guard scans new
text, as in real use: the sandbox's answers quote them). For each turn the overhead is the
median over rounds of (ours - raw) for that turn; the figure is their mean over the 20 turns,
so the model's time (the sandbox's, the same for both) is left out.

    python benchmarks/conversation.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import httpx

from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

MODEL = "meta-llama/llama-3.3-70b-instruct:free"
TURNS, ROUNDS = 20, 15
SYSTEM = "You are a patient tutor. Answer in two sentences."


def question(round_: int, turn: int) -> str:
    return (f"Question {turn} of round {round_}: what does HTTP status {400 + turn} mean, and "
            "when is a request that got it retried?")


def raw_conversation(client: httpx.Client, round_: int) -> list[float]:
    """Seconds per turn for raw httpx holding the conversation itself."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    times = []
    for turn in range(1, TURNS + 1):
        start = time.perf_counter()
        messages.append({"role": "user", "content": question(round_, turn)})
        response = client.post("chat/completions",
                               json={"model": MODEL, "max_tokens": 256, "messages": messages})
        response.raise_for_status()
        messages.append(response.json()["choices"][0]["message"])
        times.append(time.perf_counter() - start)
    return times


def orn_conversation(session: Session, round_: int) -> list[float]:
    """Seconds per turn for ``Conversation.ask`` (ledger row included)."""
    chat = session.chat(MODEL, system=SYSTEM, max_tokens=256)
    times = []
    for turn in range(1, TURNS + 1):
        start = time.perf_counter()
        chat.ask(question(round_, turn))
        times.append(time.perf_counter() - start)
    assert chat.turns == TURNS and len(chat.messages) == 2 * TURNS + 1
    return times


def main() -> None:
    sandbox = Sandbox(seed=1, rpm=10**9, rpd=10**9)
    with SandboxServer(sandbox) as server, tempfile.TemporaryDirectory() as home:
        key = sandbox_key("bench")
        raw = httpx.Client(base_url=server.base_url + "/",
                           headers={"Authorization": f"Bearer {key}"})
        session = Session(api_key=key, base_url=server.base_url, sandbox=False, home=home,
                          retries=0, rpm=10**9)
        raw_conversation(raw, 0), orn_conversation(session, 0)  # connections, catalog
        overhead: list[list[float]] = [[] for _ in range(TURNS)]  # per turn, ms, each round
        raw_turn: list[float] = []
        for round_ in range(1, ROUNDS + 1):
            if round_ % 2:
                raw_times, orn_times = raw_conversation(raw, round_), orn_conversation(session, round_)
            else:
                orn_times = orn_conversation(session, round_)
                raw_times = raw_conversation(raw, round_)
            for turn, (ours, theirs) in enumerate(zip(orn_times, raw_times, strict=True)):
                overhead[turn].append((ours - theirs) * 1000)
            raw_turn.append(sum(raw_times) / TURNS * 1000)
        raw.close()
        rows = len(session.ledger)
        session.close()
    print(f"{ROUNDS} rounds of a {TURNS}-turn conversation each side; raw httpx "
          f"{statistics.median(raw_turn):.3f} ms/turn (the sandbox's answer included); "
          f"{rows} ledger rows written")
    per_turn = [statistics.median(samples) for samples in overhead]
    print(f"overhead at turn 1: {per_turn[0]:.3f} ms, at turn {TURNS}: {per_turn[-1]:.3f} ms "
          "(medians over rounds)")
    print(f"figure: conversation_turn_overhead = {statistics.fmean(per_turn):.3f} ms "
          "(target <= 2.0)")


if __name__ == "__main__":
    main()
