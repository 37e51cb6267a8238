"""A class on one key (issue 19): the PostgreSQL ledger, the shared pacer, fair shares, budgets,
the instructor's view and the faults, against a real PostgreSQL server and the sandbox server
on loopback."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import openrouter_nb as orn
from openrouter_nb.api.errors import ClassBudgetExceeded, LedgerUnavailable
from openrouter_nb.class_gate import ClassGate, Waiting
from openrouter_nb.notebook.class_view import ClassView, cmd_class
from openrouter_nb.notebook.display import waiting_status
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session, set_session
from tests.postgres_server import PostgresServer

FREE = "meta-llama/llama-3.3-70b-instruct:free"
PAID = "meta-llama/llama-3.3-70b-instruct"


@pytest.fixture(autouse=True)
def _no_class_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENROUTER_NB_LEDGER", "OPENROUTER_NB_PERSON", "JUPYTERHUB_USER",
                 "OPENROUTER_NB_INSTRUCTORS", "OPENROUTER_NB_LEDGER_FALLBACK",
                 "OPENROUTER_NB_DB_WAIT_S"):
        monkeypatch.delenv(name, raising=False)


class Counting:
    """The sandbox server's quota decisions, as they happen."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.decisions: list[tuple[float, str | None]] = []
        attempt = sandbox.quota.attempt

        def counted(key: str) -> Any:
            decision = attempt(key)
            self.decisions.append((time.time(), decision.kind))
            return decision

        sandbox.quota.attempt = counted  # type: ignore[method-assign]

    @property
    def rejected(self) -> int:
        return sum(1 for _t, kind in self.decisions if kind is not None)

    @property
    def admitted(self) -> int:
        return sum(1 for _t, kind in self.decisions if kind is None)


@pytest.fixture
def shared_key() -> Iterator[tuple[SandboxServer, Counting]]:
    sandbox = Sandbox(rpm=3, window_s=1.5, rpd=10**6, seed=19)
    counting = Counting(sandbox)
    with SandboxServer(sandbox) as server:
        yield server, counting


@pytest.fixture
def participant(tmp_path: Path, postgres_url: str, shared_key: tuple[SandboxServer, Counting]
                ) -> Iterator[Callable[..., Session]]:
    """Sessions of a class: each its own person and home, one key, one database."""
    server, _counting = shared_key
    made: list[Session] = []

    def make(person: str, **options: Any) -> Session:
        for name, value in (("retries", 0), ("rpm", 3), ("window_s", 1.5), ("rpd", 10**6),
                            ("max_tokens", 16)):
            options.setdefault(name, value)
        session = Session(api_key=sandbox_key("class-key"), base_url=server.base_url,
                          sandbox=False, home=tmp_path / person, ledger_url=postgres_url,
                          person=person, **options)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


def _rows(url: str, sql: str = "SELECT person, status, error_kind, http_status FROM attempts"
          ) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


# -- pacing a whole class ------------------------------------------------------------------------
def test_three_kernels_on_one_key_never_provoke_a_429(
        participant: Callable[..., Session], shared_key: tuple[SandboxServer, Counting],
        postgres_url: str) -> None:
    _server, counting = shared_key
    people = [participant(name) for name in ("ana", "ben", "chloe")]
    answers: dict[str, int] = {}

    def ask_in_a_loop(session: Session) -> None:
        for number in range(4):
            session.ask(f"{session.person} {number}", model=FREE)
            answers[str(session.person)] = answers.get(str(session.person), 0) + 1

    threads = [threading.Thread(target=ask_in_a_loop, args=(s,)) for s in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == {"ana": 4, "ben": 4, "chloe": 4}  # 12 requests at 3 per 1.5 s: paced
    assert counting.rejected == 0 and counting.admitted == 12
    rows = _rows(postgres_url)
    assert sorted(r[0] for r in rows) == ["ana"] * 4 + ["ben"] * 4 + ["chloe"] * 4
    assert {r[1] for r in rows} == {"ok"}
    times = sorted(t for t, _kind in counting.decisions)
    assert times[-1] - times[0] > 1.5 * 3  # 12 at 3 per 1.5 s: at least three windows apart


def _queue(url: str, pool: str, people: list[str]) -> list[int]:
    """Queue rows for ``people`` held by a live connection of this test (so never stale)."""
    conn = psycopg.connect(url, autocommit=True)
    ids = [conn.execute(
        "INSERT INTO pace_queue (pool, person, since, pid, backend_start) SELECT %s, %s, 0, "
        "pg_backend_pid(), backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid() "
        "RETURNING id", (pool, person)).fetchone()[0] for person in people]  # type: ignore[index]
    _held.append(conn)
    return ids


_held: list[psycopg.Connection[Any]] = []


def test_a_runaway_loop_does_not_starve_the_class(participant: Callable[..., Session],
                                                    postgres_url: str) -> None:
    """Free slots go first to whoever had the fewest lately: ``loop`` has had five, so a
    request of ``quiet`` goes before ``loop``'s older ones."""
    session = participant("quiet")
    gate = session.classroom.gate
    assert isinstance(gate, ClassGate)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for _ in range(5):
            conn.execute("INSERT INTO pace_sends (pool, person, stamp, paced) VALUES "
                         "(%s, 'loop', EXTRACT(EPOCH FROM clock_timestamp()) - 100, true)",
                         (gate.pool,))
    try:
        loop_ids = _queue(postgres_url, gate.pool, ["loop", "loop"])
        grant = gate.acquire(free=True, rpm=1, window_s=60.0, rpd=None)
        assert grant.send_id is not None and grant.waited < 5
        queued = _rows(postgres_url, "SELECT id, granted FROM pace_queue ORDER BY id")
        assert [(i, g) for i, g in queued if i in loop_ids] == [(i, None) for i in loop_ids]
    finally:
        while _held:
            _held.pop().close()


def test_a_waiting_request_is_told_its_place_and_the_expected_wait(
        participant: Callable[..., Session], postgres_url: str) -> None:
    session = participant("dora")
    gate = session.classroom.gate
    assert isinstance(gate, ClassGate)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the window is full now
        conn.execute("INSERT INTO pace_sends (pool, person, stamp, paced) VALUES "
                     "(%s, 'eli', EXTRACT(EPOCH FROM clock_timestamp()), true)", (gate.pool,))
    seen: list[Waiting] = []
    try:
        _queue(postgres_url, gate.pool, ["eli"])  # eli had a slot: dora goes first
        started = time.monotonic()
        grant = gate.acquire(free=True, rpm=1, window_s=2.5, rpd=None, on_wait=seen.append)
        waited = time.monotonic() - started
    finally:
        while _held:
            _held.pop().close()
    assert seen and {(w.place, w.waiting) for w in seen} == {(1, 2)}
    # the window frees 2.5 s after eli's stamp (set just before): most of that is left
    assert 0.5 < seen[0].expected_s <= 2.52 and 0.5 < waited < 5.0 and grant.waited > 0.5
    expected = [w.expected_s for w in seen]  # told about once a second, with no query
    assert len(expected) >= 2 and expected == sorted(expected, reverse=True)
    line = waiting_status(seen[0].expected_s, 1, 2.5, seen[0].place, seen[0].waiting)
    assert re.fullmatch(r"⏳ place 1 of 2 in the class's queue, about [1-3] s "
                        r"\(1/2.5 s for the class\)", line), line


def test_waiters_of_a_dead_kernel_are_dropped(participant: Callable[..., Session],
                                              postgres_url: str) -> None:
    session = participant("fay")
    gate = session.classroom.gate
    assert isinstance(gate, ClassGate)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pace_queue (pool, person, since, pid) VALUES "
                     "(%s, 'ghost', 0, 2147483000)", (gate.pool,))
    grant = gate.acquire(free=True, rpm=1, window_s=60.0, rpd=None)
    assert grant.send_id is not None
    assert _rows(postgres_url, "SELECT person FROM pace_queue") == []


# -- budgets ----------------------------------------------------------------------------------------
def test_the_instructors_budget_is_enforced_before_sending(
        participant: Callable[..., Session], shared_key: tuple[SandboxServer, Counting],
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _server, counting = shared_key
    monkeypatch.setenv("OPENROUTER_NB_INSTRUCTORS", "teacher")
    teacher, student = participant("teacher"), participant("gus")
    with pytest.raises(PermissionError, match="instructors"):
        student.class_budget(100)
    teacher.class_budget(2)  # everyone
    teacher.class_budget(3, person="teacher")  # one's own overrides everyone's
    student.ask("one", model=FREE)
    student.ask("two", model=FREE)
    with pytest.raises(ClassBudgetExceeded) as refused:
        student.ask("three", model=FREE)
    assert "instructor's limit for everyone in the class is 2 requests a day" in str(
        refused.value)
    assert counting.admitted == 2  # the third was never sent
    kinds = [r[2] for r in _rows(postgres_url) if r[0] == "gus"]
    assert kinds == [None, None, "class_budget"]
    assert list(teacher.class_budgets()["person"]) == ["*", "teacher"]
    teacher.class_budget(None, person="*")  # removed: gus may ask again
    assert student.ask("four", model=FREE).text


def test_a_dollar_budget_stops_a_paid_route(participant: Callable[..., Session],
                                            postgres_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_NB_INSTRUCTORS", "teacher")
    teacher, student = participant("teacher"), participant("hana")
    teacher.class_budget(None, 0.5, person="hana")
    student.ledger.record(call_id="earlier", status="ok", cost=0.6, requested_model=PAID)
    with pytest.raises(ClassBudgetExceeded, match=r"for you is \$0.50 a day"):
        student.ask("expensive", model=PAID)


# -- who sees what -------------------------------------------------------------------------------
def test_participants_see_their_rows_and_the_instructor_the_class(
        participant: Callable[..., Session], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_NB_INSTRUCTORS", "teacher")
    ivy, jon, teacher = participant("ivy"), participant("jon"), participant("teacher")
    ivy.ask("a", model=FREE)
    jon.ask("b", model=FREE)
    with pytest.raises(orn.ModelUnavailableError):
        jon.ask("c", model="no-such/model:free")  # a failure, by kind
    assert set(ivy.log()["call_id"]) == {ivy.ledger.rows()[0]["call_id"]}
    assert len(teacher.log()) == 3
    with pytest.raises(PermissionError, match="not in OPENROUTER_NB_INSTRUCTORS"):
        ClassView(ivy)
    view = ClassView(teacher)
    frame = view.frame.set_index("person")
    assert list(frame.index) == ["ivy", "jon"]
    assert frame.loc["jon", "requests_today"] == 2 and frame.loc["jon", "failed"] == 1
    assert frame.loc["jon", "failures"] == "model_unavailable ×1"
    assert frame["share"].sum() == pytest.approx(1.0, abs=0.01)
    assert "2 participants today" in view.html() and "<table" in view.html()
    assert frame.loc["ivy", "last_model"] == FREE


def test_the_class_command_for_a_participant_and_an_instructor(
        participant: Callable[..., Session], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENROUTER_NB_INSTRUCTORS", "teacher")
    student, teacher = participant("kim"), participant("teacher")
    old = set_session(student)
    try:
        assert cmd_class([]) is None
        assert "is for the class's instructors" in capsys.readouterr().out
        set_session(teacher)
        assert cmd_class(["budget", "5", "--person", "kim"]) is None
        assert "class budget for kim: 5 requests a day" in capsys.readouterr().out
        assert cmd_class(["budget", "lots"]) is None
        assert "N must be a whole number" in capsys.readouterr().out
        assert list(orn.class_budgets()["requests_per_day"]) == [5]
        assert isinstance(cmd_class([]), ClassView)
    finally:
        set_session(old)


def test_a_class_ledger_needs_a_name(tmp_path: Path, postgres_url: str) -> None:
    with pytest.raises(ValueError, match="JUPYTERHUB_USER"):
        Session(sandbox=True, home=tmp_path, ledger_url=postgres_url)


def test_identity_comes_from_jupyterhub(tmp_path: Path, postgres_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "lena")
    monkeypatch.setenv("OPENROUTER_NB_LEDGER", postgres_url)
    session = Session(sandbox=True, home=tmp_path)
    assert session.person == "lena" and session.classroom.gate is None  # own sandbox: own pace
    session.ask("hello")
    assert _rows(postgres_url, "SELECT person, sandbox FROM attempts") == [("lena", 1)]


# -- faults --------------------------------------------------------------------------------------------
def test_an_unreachable_database_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(LedgerUnavailable) as failed:
        Session(sandbox=True, home=tmp_path, person="max",
                ledger_url="postgresql://max:s3cretpw@127.0.0.1:1/class")
    text = str(failed.value)
    assert "s3cretpw" not in text and "postgresql://max:***@127.0.0.1:1/class" in text
    assert "nothing was sent" in text


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def _down(server: PostgresServer, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=server.restart, kwargs={"down_s": seconds})
    thread.start()
    time.sleep(0.6)  # the fast stop has happened
    return thread


def test_an_outage_waits_boundedly_then_fails_and_no_row_is_lost(
        own_server: PostgresServer, shared_key: tuple[SandboxServer, Counting], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, counting = shared_key
    url = own_server.new_database("outage")
    monkeypatch.setenv("OPENROUTER_NB_DB_WAIT_S", "1.0")
    session = Session(api_key=sandbox_key("class-key"), base_url=server.base_url,
                      sandbox=False, home=tmp_path, ledger_url=url, person="nora", retries=0,
                      rpm=3, window_s=1.5, rpd=10**6)
    session.ask("before", model=FREE)
    restart = _down(own_server, 8.0)
    try:
        started = time.monotonic()
        with pytest.warns(RuntimeWarning, match="ledger-spool.sqlite"), \
                pytest.raises(LedgerUnavailable, match="could not be reached"):
            session.ask("during", model=FREE)
        # bounded: the pacer's wait (1 s), then the failure's row to the spool (3 s)
        assert time.monotonic() - started < 7
        assert counting.admitted == 1  # nothing was sent during the outage
        assert len(session.ledger.spool) == 1  # type: ignore[attr-defined]
    finally:
        restart.join(timeout=60)
    session.ask("after", model=FREE)
    assert len(session.ledger.spool) == 0  # type: ignore[attr-defined]
    kinds = sorted(str(r[2]) for r in _rows(url))
    assert kinds == ["None", "None", "ledger_unavailable"]
    session.close()


def test_an_allowed_fallback_goes_on_locally_and_syncs_back(
        own_server: PostgresServer, shared_key: tuple[SandboxServer, Counting], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, counting = shared_key
    url = own_server.new_database("fallback")
    monkeypatch.setenv("OPENROUTER_NB_DB_WAIT_S", "1.0")
    monkeypatch.setenv("OPENROUTER_NB_LEDGER_FALLBACK", "local")
    session = Session(api_key=sandbox_key("class-key"), base_url=server.base_url,
                      sandbox=False, home=tmp_path, ledger_url=url, person="omar", retries=0,
                      rpm=3, window_s=1.5, rpd=10**6)
    restart = _down(own_server, 8.0)
    try:
        with pytest.warns(RuntimeWarning) as caught:
            answer = session.ask("during", model=FREE)
        said = " ".join(str(warning.message) for warning in caught)
        assert "paces its own requests" in said and "ledger-spool.sqlite" in said
        assert answer.text and counting.admitted == 1
        assert len(session.ledger.spool) == 1  # type: ignore[attr-defined]
    finally:
        restart.join(timeout=60)
    session.ask("after", model=FREE)
    assert sorted(r[1] for r in _rows(url)) == ["ok", "ok"]
    assert len(session.ledger.spool) == 0  # type: ignore[attr-defined]
    session.close()


# -- the load test, small (benchmarks/class_scale.py runs the class of 30) ------------------------
def test_a_small_class_with_a_kill_and_a_restart(postgres: PostgresServer) -> None:
    from benchmarks.class_scale import run_class

    figures = run_class(participants=8, window_s=2.0, windows=5, rpm=6, log=lambda _s: None)
    assert figures["quota_429s"] == 0, figures
    assert figures["rows_lost"] == 0, figures
    assert figures["attempts_seen"] >= 30, figures
    # About four requests each, so the class of 30 (benchmarks/class_scale.py) reports the
    # share ratio; here the counts may differ by the round-robin's one, plus one for a grant
    # lost to the restart and one for a late reconnection (seen: 1 or 2).
    assert figures["spread"] <= 3, figures
    assert min(figures["shares"]) >= 2, figures  # nobody who kept asking was starved
    assert figures["killed"] == "p00" and figures["restart_s"] > 1.5, figures


# -- what a participant sees -----------------------------------------------------------------------
def test_a_waiting_cell_shows_its_place_in_the_class_queue(
        participant: Callable[..., Session], postgres_url: str) -> None:
    from openrouter_nb.notebook.display import StreamingDisplay
    from tests.test_display import Recorder

    session = participant("pia")
    gate = session.classroom.gate
    assert isinstance(gate, ClassGate)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the window is full now
        for _ in range(3):
            conn.execute("INSERT INTO pace_sends (pool, person, stamp, paced) VALUES "
                         "(%s, 'quinn', EXTRACT(EPOCH FROM clock_timestamp()), true)", (gate.pool,))
    target = Recorder()
    view = StreamingDisplay(live=True, target=target, clock=lambda: 0.0)
    view.start(FREE)
    unsubscribe = session.quota.subscribe(view.on_quota)
    try:
        answer = session.ask("waits", FREE, on_delta=view.on_delta, on_event=view.on_event)
    finally:
        unsubscribe()
    view.finish(answer)
    lines = [b["text/plain"] for b in target.updates if "queue" in b["text/plain"]]
    assert lines and lines[0].startswith("⏳ place 1 of 1 in the class's queue, about ")
    assert lines[0].endswith("(3/1.5 s for the class)")
    assert "queue" not in target.updates[-1]["text/plain"]  # the answer replaced it


def test_the_meter_counts_the_whole_class(participant: Callable[..., Session]) -> None:
    # a long window for the meter's figures (the server's is 1.5 s; two requests fit in it)
    rosa, sam = participant("rosa", window_s=60.0), participant("sam", window_s=60.0)
    rosa.ask("one", FREE)
    rosa.ask("two", FREE)
    state = sam.quota_state()  # sam sent nothing: what it shows is the class's
    assert state.minute_used == 2 and state.day_used == 2
    assert state.sources["minute_used"] == "class database"
    assert state.note.startswith("Shared by the class: 0 requests waiting")


def test_a_profile_may_name_the_class_ledger_but_never_its_password(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from openrouter_nb import config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "openrouter_nb.toml").write_text(
        f'[profiles.class]\nledger_url = "{postgres_url}"\nsandbox = true\n')
    session = Session.from_profile("class", home=tmp_path, person="tess")
    session.ask("hello")
    assert _rows(postgres_url, "SELECT person FROM attempts") == [("tess",)]
    (tmp_path / "openrouter_nb.toml").write_text(
        '[profiles.class]\nledger_url = "postgresql://tess:hunter22@db/class"\n')
    with pytest.raises(ValueError, match="passwords do not belong in files") as refused:
        config.load_profiles()
    assert "hunter22" not in str(refused.value)


def test_the_readmes_participant_role_can_ask_but_not_set_budgets(
        participant: Callable[..., Session], postgres_url: str, tmp_path: Path,
        shared_key: tuple[SandboxServer, Counting], monkeypatch: pytest.MonkeyPatch) -> None:
    """The grants the README's JupyterHub recipe gives participants are enough to take part
    (no CREATE: the tables exist), and too few to write budgets, whatever the environment."""
    participant("teacher")  # the instructor's (owner's) session creates the tables
    role = f"p_{abs(hash(postgres_url)) % 10**8}"
    pacer = "pace_sends, pace_queue, pace_people, pace_pools"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        database = conn.info.dbname
        for sql in (f"CREATE ROLE {role} LOGIN", "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                    f"GRANT CONNECT ON DATABASE {database} TO {role}",
                    f"GRANT SELECT, INSERT ON attempts TO {role}",
                    f"GRANT SELECT, INSERT, UPDATE, DELETE ON {pacer} TO {role}",
                    f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
                    f"GRANT SELECT ON class_budgets, orn_schema TO {role}"):
            conn.execute(sql)  # type: ignore[call-overload]
    url = postgres_url.replace("orn_test@", f"{role}@")
    monkeypatch.setenv("OPENROUTER_NB_INSTRUCTORS", "uma")  # she pretends to be one
    server, _counting = shared_key
    uma = Session(api_key=sandbox_key("class-key"), base_url=server.base_url, sandbox=False,
                  home=tmp_path / "uma", ledger_url=url, person="uma", retries=0, rpm=3,
                  window_s=1.5, rpd=10**6)
    try:
        assert uma.ask("may I?", FREE).text
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            uma.class_budget(1000)
    finally:
        uma.close()


def test_the_class_view_charts_and_watches(participant: Callable[..., Session],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_NB_INSTRUCTORS", "teacher")
    vic, teacher = participant("vic"), participant("teacher")
    vic.ask("one", FREE)
    view = ClassView(teacher)
    chart = view.chart()
    assert list(chart.frames["people"]["person"]) == ["vic"]
    assert int(chart.frames["hourly"]["sent"].sum()) == 1
    assert chart.png().startswith(b"\x89PNG")
    assert [ax.get_title() for ax in chart.figure.axes][0].startswith("Requests per participant")
    box = view.watch(every=0.2)
    try:
        vic.ask("two", FREE)
        deadline = time.monotonic() + 10
        while "2 requests sent" not in box.value and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "2 requests sent" in box.value
    finally:
        view.stop()


def test_a_derived_session_stays_in_the_class(participant: Callable[..., Session],
                                              tmp_path: Path) -> None:
    wes = participant("wes")
    with wes.derive(record=tmp_path / "wes.jsonl") as recording:
        assert recording.classroom.gate is wes.classroom.gate  # one pacer per kernel
        assert recording.ledger is wes.ledger and recording.person == "wes"
        assert recording.ask("recorded", FREE).text
    with wes.derive(sandbox=True) as own:
        assert own.classroom.gate is None  # its own sandbox paces alone


def test_the_class_code_costs_nothing_until_used() -> None:
    """``%load_ext`` (the magics and their commands) imports neither pandas nor psycopg."""
    import subprocess
    import sys

    code = ("import sys; import openrouter_nb.notebook.magics, openrouter_nb.notebook.commands, "
            "openrouter_nb.session; print(sorted(m for m in ('pandas', 'psycopg', "
            "'psycopg_pool') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "[]"
