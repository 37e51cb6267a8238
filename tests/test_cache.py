"""The quota-saving cache: identical requests answered from the ledger, nothing sent."""

from __future__ import annotations

from collections.abc import Callable

from IPython.core.interactiveshell import InteractiveShell

from openrouter_nb.cache import ROUTER_NOTE
from openrouter_nb.session import Session

from .conftest import FakeClock

MODEL = "openai/gpt-oss-20b:free"


def chats(session: Session) -> int:
    return sum(1 for r in session.sandbox.requests if r.path.endswith("/chat/completions"))


def test_a_cache_hit_sends_nothing_and_is_labelled(make_session: Callable[..., Session],
                                                  clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, cache=True)
    first = session.ask("Name three primes", MODEL, max_tokens=200)
    used = session.quota_state().day_used
    clock.now += 600
    again = session.ask("Name three primes", MODEL, max_tokens=200)
    assert chats(session) == 1
    assert again.text == first.text and again.model == first.model
    assert again.attempts == 0 and again.latency_s == 0.0
    assert "cached from 16:53 UTC (nothing sent)" in again.footer()
    assert "cached" not in first.footer()
    assert session.quota_state().day_used == used  # no quota used
    rows = session.ledger.rows()
    assert [r["status"] for r in rows] == ["ok", "cached"]
    assert rows[1]["http_status"] is None and rows[1]["request_hash"] == rows[0]["request_hash"]
    since = clock.now - 3600
    assert session.ledger.count_attempts(since=since, account=session.account) == 1
    assert len(session.ledger.attempt_times(since=since, account=session.account)) == 1


def test_any_difference_is_a_new_request(make_session: Callable[..., Session]) -> None:
    session = make_session(cache=True)
    session.ask("Name three primes", MODEL)
    session.ask("Name three primes", MODEL, max_tokens=3000)
    session.ask("Name three primes", MODEL, system="Be brief.")
    session.ask("Name four primes", MODEL)
    session.ask("Name three primes", "google/gemma-3-27b-it:free")
    assert chats(session) == 5
    session.ask("Name three primes", MODEL, stream=True)  # streaming: the same answer
    assert chats(session) == 5


def test_cache_is_opt_in_and_per_call(make_session: Callable[..., Session]) -> None:
    session = make_session()
    session.ask("Hello", MODEL)
    session.ask("Hello", MODEL)
    assert chats(session) == 2  # off by default
    hit = session.ask("Hello", MODEL, cache=True)  # an earlier answer, sent without the cache
    assert chats(session) == 2 and hit.extra["cached_at"] is not None
    cached = make_session(cache=True)
    cached.ask("Hello again", MODEL)
    cached.ask("Hello again", MODEL, cache=False)
    assert chats(cached) == 2


def test_the_free_router_is_cached_with_a_note(make_session: Callable[..., Session]) -> None:
    session = make_session(cache=True)
    first = session.ask("Explain SSE")
    again = session.ask("Explain SSE")
    assert chats(session) == 1 and again.model == first.model
    assert ROUTER_NOTE in again.notes and ROUTER_NOTE not in first.notes


def test_an_invalid_answer_is_never_cached(make_session: Callable[..., Session]) -> None:
    session = make_session(cache=True, retries=0)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    for _ in range(2):
        try:
            session.ask("Give a number", "google/gemma-3-27b-it:free", schema=schema,
                        headers={"X-Sandbox-Fault": "empty_content"})
        except Exception:  # noqa: BLE001 - any failure: what matters is that both were sent
            pass
    assert chats(session) == 2


def test_magic_cache_on_off_and_no_cache(ip: InteractiveShell, session: Session,
                                         capsys: object) -> None:
    ip.run_line_magic("openrouter", "cache on")
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "cache: on" in out and "free router (openrouter/free)" in out
    ip.run_cell_magic("openrouter", f"-m {MODEL} --no-stream --out a", "Hello there")
    ip.run_cell_magic("openrouter", f"-m {MODEL} --no-stream --out b", "Hello there")
    ip.run_cell_magic("openrouter", f"-m {MODEL} --no-stream --no-cache --out c", "Hello there")
    assert chats(session) == 2
    assert "cached from" in ip.user_ns["b"].footer()
    assert "cached from" not in ip.user_ns["c"].footer()
    ip.run_line_magic("openrouter", "cache off")
    assert "cache: off" in capsys.readouterr().out  # type: ignore[attr-defined]
    assert session.config.call.cache is False


def test_a_profile_turns_the_cache_on(tmp_path: object) -> None:
    from pathlib import Path

    home = Path(str(tmp_path))
    toml = home / "openrouter_nb.toml"
    toml.write_text('[profiles.dev]\nmodel = "openai/gpt-oss-20b:free"\ncache = true\n'
                    'sandbox = true\n')
    session = Session.from_profile("dev", path=toml, home=home)
    try:
        assert session.config.call.cache is True
        session.ask("Hello from a profile")
        again = session.ask("Hello from a profile")
        assert chats(session) == 1 and "cached from" in again.footer()
    finally:
        session.close()


def test_cached_turns_and_rows_resume_from_the_ledger(make_session: Callable[..., Session]
                                                      ) -> None:
    import pandas as pd

    session = make_session(cache=True)
    session.chat(MODEL, name="first").ask("What is a 429?")
    second = session.chat(MODEL, name="second")
    answer = second.ask("What is a 429?")  # the same messages: answered from the ledger
    assert chats(session) == 1 and answer.extra["cached_at"] is not None
    resumed = session.chat(resume="second")
    assert resumed.turns == 1 and resumed.messages[-1].role == "assistant"

    frame = pd.DataFrame({"text": ["a", "b"]})
    session.batch(frame, "Label: {text}", model=MODEL, progress=None)
    session.batch(frame, "Label: {text}", model=MODEL, progress=None, out="other")  # cached
    again = session.batch(frame, "Label: {text}", model=MODEL, progress=None, out="other")
    assert again.attrs["openrouter_batch"]["resumed"] == 2 and chats(session) == 3
