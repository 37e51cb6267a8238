"""Shared fixtures: the sandbox in-process and as a real loopback server."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from openrouter_nb.answer import Answer
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session, set_session

from .postgres_server import PostgresServer, available


class FakeClock:
    """A clock tests move by hand; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = 1_788_800_000.0) -> None:  # 2026-09-07 16:53 UTC
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_answer(text: str, **overrides: Any) -> Answer:
    """An ``Answer`` as the sandbox gives one, for display tests; ``overrides`` change fields."""
    fields: dict[str, Any] = dict(
        text=text, model="meta/llama:free", requested_model="openrouter/free", provider="P",
        usage={"prompt_tokens": 3, "completion_tokens": 5}, latency_s=0.5, call_id="c1",
        attempts=1, sandbox=True, mode="sandbox")
    fields.update(overrides)
    return Answer(**fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox(seed=7)) as srv:
        yield srv


@pytest.fixture
def make_session(tmp_path: Path) -> Iterator[Callable[..., Session]]:
    """Build sessions on a fresh ledger; ``loopback=server`` talks HTTP to a real server."""
    made: list[Session] = []

    def make(loopback: SandboxServer | None = None, **options: Any) -> Session:
        options.setdefault("home", tmp_path)
        options.setdefault("retries", 0)
        if loopback is not None:
            session = Session(api_key=sandbox_key(options.pop("key_name", tmp_path.name)),
                              base_url=loopback.base_url, sandbox=False, **options)
        else:
            session = Session(sandbox=True, **options)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """A sandbox session made the default one (what the magics and orn.* use)."""
    new = Session(home=tmp_path, sandbox=True, sleep=lambda _s: None)
    old = set_session(new)
    yield new
    set_session(old)
    new.close()


@pytest.fixture
def ip(session: Session) -> Iterator[InteractiveShell]:
    """An IPython shell with the extension loaded, on ``session``."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "openrouter_nb")
    yield shell
    InteractiveShell.clear_instance()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on a loopback port for the whole run (skips without one)."""
    reason = available()
    if reason is not None:
        if os.environ.get("OPENROUTER_NB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"OPENROUTER_NB_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty database on the session's server, one per test."""
    stem = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
    return postgres.new_database(f"t_{stem}_{uuid.uuid4().hex[:12]}")
