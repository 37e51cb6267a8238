"""Side-by-side comparison: one row per model, run concurrently (judged from the sandbox's
request log, not from wall time)."""

from __future__ import annotations

from pathlib import Path

import openrouter_nb as orn
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session, set_session

MODELS = ["google/gemma-3-27b-it:free", "openai/gpt-oss-20b:free", "qwen/qwen3-coder:free",
          "no/such-model:free"]


def test_compare_rows_and_overlap(tmp_path: Path) -> None:
    sandbox = Sandbox(latency_ms=300)
    with SandboxServer(sandbox) as server:
        session = Session(api_key=sandbox_key("cmp"), base_url=server.base_url, sandbox=False,
                          home=tmp_path, retries=0)
        old = set_session(session)
        try:
            frame = orn.compare("Name a prime number", MODELS)
        finally:
            set_session(old)
            session.close()
    assert list(frame["requested_model"]) == MODELS
    ok = frame[frame["status"] == "ok"]
    assert list(ok["served_model"]) == MODELS[:3]
    assert (ok["latency_s"] >= 0.3).all() and ok["completion_tokens"].notna().all()
    bad = frame.iloc[3]
    assert bad["status"] == "error" and bad["error_kind"] == "model_unavailable"
    # The three answering requests were in flight at the same time.
    chats = [r for r in sandbox.requests if r.path.endswith("/chat/completions")
             and r.status == 200]
    assert len(chats) == 3
    latest_start = max(r.perf_start for r in chats)
    earliest_end = min(r.perf_end for r in chats if r.perf_end is not None)
    assert latest_start < earliest_end


def test_compare_is_bounded(tmp_path: Path) -> None:
    session = Session(sandbox=True, home=tmp_path, sandbox_options={"latency_ms": 50})
    results = session.compare("hi", MODELS[:3], max_workers=1)
    chats = [r for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    for earlier, later in zip(chats, chats[1:], strict=False):
        assert earlier.perf_end is not None and earlier.perf_end <= later.perf_start
    assert [a.model for a in results] == MODELS[:3]
