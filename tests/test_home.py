"""The home folder (``OPENROUTER_NB_HOME``) and the ledger file when something is wrong with
them: a file in the way, a read-only folder or file (still read), a damaged ledger (moved
aside, never deleted). Each problem is our own error naming the path and what to do."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import openrouter_nb as orn
from openrouter_nb.api.errors import HomeFolderError, OpenRouterError
from openrouter_nb.ledger import COLUMNS, Ledger
from openrouter_nb.session import Session, set_session

Chmod = Callable[[Path, int], None]
GARBAGE = b"this is not an SQLite file\n" * 200


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _override_permissions(allowed: bool) -> bool:
    """Linux, as root: turn CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH on or off in this
    thread's effective set (they stay permitted), so that file modes bind root too."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # capability version 3
    if libc.capget(ctypes.byref(header), data) != 0:
        return False
    bits = (1 << 1) | (1 << 2)
    data[0].effective = data[0].effective | bits if allowed else data[0].effective & ~bits
    return libc.capset(ctypes.byref(header), data) == 0


@pytest.fixture
def chmod() -> Iterator[Chmod]:
    """``chmod`` that binds this test even when it runs as root; modes restored after."""
    if sys.platform == "win32":
        pytest.skip("read-only folders: POSIX permissions")
    as_root = os.geteuid() == 0
    if as_root and not (sys.platform.startswith("linux") and _override_permissions(False)):
        pytest.skip("running as root without a way to drop the permission override")
    changed: list[tuple[Path, int]] = []

    def change(path: Path, mode: int) -> None:
        changed.append((path, path.stat().st_mode & 0o7777))
        path.chmod(mode)

    yield change
    if as_root:
        _override_permissions(True)
    for path, mode in reversed(changed):
        path.chmod(mode)


@pytest.fixture
def default_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Point ``OPENROUTER_NB_HOME`` somewhere; the default session is made from it."""
    monkeypatch.setenv("OPENROUTER_NB_SANDBOX", "1")
    old = set_session(None)

    def use(home: Path) -> None:
        monkeypatch.setenv("OPENROUTER_NB_HOME", str(home))
        set_session(None)

    yield use
    made = set_session(old)
    if made is not None:
        made.close()


def a_ledger(path: Path, rows: int = 3) -> Path:
    ledger = Ledger(path)
    ledger.record_many({"call_id": f"c{n}", "status": "ok", "response": f"answer {n}"}
                       for n in range(rows))
    ledger.close()
    return path


def assert_names(error: OpenRouterError, path: Path, *words: str) -> None:
    message = str(error)
    assert isinstance(error, HomeFolderError) and error.path == path
    assert str(path) in message and "OPENROUTER_NB_HOME" in message
    for word in words:
        assert word in message
    assert "Traceback" not in message and "Errno" not in message


# -- the folder ---------------------------------------------------------------------------
def test_a_home_that_is_a_file_is_named(tmp_path: Path,
                                        default_home: Callable[[Path], None]) -> None:
    home = tmp_path / "home"
    home.write_text("oops")
    default_home(home)
    with pytest.raises(HomeFolderError) as caught:
        orn.log()
    assert_names(caught.value, home, "is a file, not a folder", "Move that file away")
    assert home.read_text() == "oops"


def test_a_home_under_a_file_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("oops")
    home = blocker / "deeper" / "home"
    with pytest.raises(HomeFolderError) as caught:
        Session(sandbox=True, home=home)
    assert_names(caught.value, home, f"{blocker} is a file, not a folder")


def test_a_ledger_path_that_is_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite").mkdir()
    with pytest.raises(HomeFolderError) as caught:
        Ledger(tmp_path / "ledger.sqlite")
    assert_names(caught.value, tmp_path / "ledger.sqlite", "is a folder, not a file")
    copy = pickle.loads(pickle.dumps(caught.value))  # e.g. from a worker process
    assert (copy.path, str(copy)) == (caught.value.path, str(caught.value))


def test_a_home_that_cannot_be_created_says_so(tmp_path: Path, chmod: Chmod) -> None:
    chmod(tmp_path, 0o555)
    home = tmp_path / "home"
    with pytest.raises(HomeFolderError) as caught:
        Session(sandbox=True, home=home)
    assert_names(caught.value, home, "cannot be created (permission denied)")


def test_a_read_only_home_cannot_start_a_ledger(tmp_path: Path, chmod: Chmod) -> None:
    chmod(tmp_path, 0o555)
    with pytest.raises(HomeFolderError) as caught:
        Ledger(tmp_path / "ledger.sqlite")
    assert_names(caught.value, tmp_path / "ledger.sqlite", "read-only", "Make the folder writable")
    assert list(tmp_path.iterdir()) == []


# -- read-only ledgers are still read -------------------------------------------------------
def test_a_ledger_in_a_read_only_home_is_still_read(
        tmp_path: Path, chmod: Chmod, default_home: Callable[[Path], None],
        caplog: pytest.LogCaptureFixture) -> None:
    a_ledger(tmp_path / "ledger.sqlite")
    chmod(tmp_path, 0o555)  # not even the -wal and -shm files can be made
    default_home(tmp_path)
    with caplog.at_level(logging.WARNING, logger="openrouter_nb.ledger"):
        frame = orn.log()
    assert frame["call_id"].tolist() == ["c0", "c1", "c2"]
    assert frame["response"].tolist() == ["answer 0", "answer 1", "answer 2"]
    assert "open read-only" in caplog.text and str(tmp_path / "ledger.sqlite") in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite"]


def test_a_read_only_ledger_file_is_read_and_refuses_new_rows(tmp_path: Path,
                                                              chmod: Chmod) -> None:
    path = a_ledger(tmp_path / "ledger.sqlite")
    before = path.read_bytes()
    chmod(path, 0o444)
    ledger = Ledger(path)
    assert ledger.read_only and len(ledger) == 3
    assert ledger.dataframe(columns="all")["call_id"].tolist() == ["c0", "c1", "c2"]
    with pytest.raises(HomeFolderError) as caught:
        ledger.record(call_id="new", status="ok")
    assert_names(caught.value, path, "read-only", "no new attempt can be recorded")
    with pytest.raises(HomeFolderError):
        ledger.record_many([{"call_id": "new", "status": "ok"}])
    assert len(ledger) == 3 and path.read_bytes() == before


def test_a_read_only_ledger_of_an_older_schema_reads_with_every_column(
        tmp_path: Path, chmod: Chmod) -> None:
    """It cannot be migrated: the columns it lacks read as empty."""
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "time TEXT, epoch REAL, call_id TEXT, status TEXT, latency_s REAL)")
        conn.execute("INSERT INTO attempts (epoch, call_id, status, latency_s) "
                     "VALUES (1.7e9, 'old', 'ok', 0.5)")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    chmod(path, 0o444)
    frame = Ledger(path).dataframe(columns="all")
    assert list(frame.columns) == list(COLUMNS)
    assert frame["call_id"].tolist() == ["old"] and frame["latency_s"].tolist() == [0.5]
    assert frame["prompt"].isna().all() and str(frame["attempt"].dtype) == "Int64"


def test_a_read_only_folder_does_not_stop_a_ledger_in_use(tmp_path: Path, chmod: Chmod) -> None:
    """Another kernel has it open (its -wal and -shm exist): it can still be written."""
    writer = Ledger(tmp_path / "ledger.sqlite")
    writer.record(call_id="first", status="ok")
    chmod(tmp_path, 0o555)
    second = Ledger(tmp_path / "ledger.sqlite")
    second.record(call_id="second", status="ok")
    assert not second.read_only
    assert [row["call_id"] for row in writer.rows()] == ["first", "second"]


# -- damaged ledgers are moved aside --------------------------------------------------------
def test_a_damaged_ledger_is_moved_aside_and_a_new_one_started(
        tmp_path: Path, default_home: Callable[[Path], None]) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(GARBAGE)
    Path(f"{path}-wal").write_bytes(b"stale wal")
    (tmp_path / "ledger.sqlite-columns").mkdir()
    (tmp_path / "ledger.sqlite-columns" / "chunk.cols").write_bytes(b"rows")
    default_home(tmp_path)
    with pytest.warns(RuntimeWarning, match=r"ledger\.sqlite is damaged \(file is not a "
                                            r"database\): it was moved to ledger\.sqlite\."
                                            r"corrupt-\d{8}T\d{6}Z beside it"):
        assert len(orn.log()) == 0
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    main = next(p for p in aside if p.name.endswith("Z"))
    assert main.read_bytes() == GARBAGE
    assert Path(f"{main}-wal").read_bytes() == b"stale wal"
    assert (Path(f"{main}-columns") / "chunk.cols").read_bytes() == b"rows"
    orn.get_session().ledger.record(call_id="fresh", status="ok")
    assert orn.log()["call_id"].tolist() == ["fresh"]


def test_damaged_ledgers_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    for number in range(3):
        path.write_bytes(GARBAGE + bytes([number]))
        with pytest.warns(RuntimeWarning, match="kept, not deleted"):
            Ledger(path).close()
    kept = sorted(p.read_bytes()[-1] for p in tmp_path.iterdir() if ".corrupt-" in p.name)
    assert kept == [0, 1, 2]


def test_a_damaged_ledger_in_a_read_only_folder_is_left_alone(tmp_path: Path,
                                                              chmod: Chmod) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(GARBAGE)
    chmod(tmp_path, 0o555)
    with pytest.raises(HomeFolderError) as caught:
        Ledger(path)
    assert_names(caught.value, path, "damaged (file is not a database)", "never deleted")
    assert path.read_bytes() == GARBAGE and len(list(tmp_path.iterdir())) == 1


def _open_damaged(barrier: Any, path: str, results: Any) -> None:
    """A kernel opening the damaged ledger at the same moment as the others."""
    import warnings

    warnings.simplefilter("ignore")
    barrier.wait(timeout=120)
    try:
        ledger = Ledger(path)
        ledger.record(call_id=str(os.getpid()), status="ok")
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_kernels_opening_a_damaged_ledger_together_move_it_aside_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(GARBAGE)
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(6), spawn.Queue()
    kernels = [spawn.Process(target=_open_damaged, args=(barrier, str(path), results))
               for _ in range(6)]
    for kernel in kernels:
        kernel.start()
    outcomes = [results.get(timeout=180) for _ in kernels]
    for kernel in kernels:
        kernel.join(timeout=60)
    assert outcomes == ["ok"] * 6
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE
    assert len(Ledger(path)) == 6


def test_asking_on_a_read_only_ledger_sends_nothing(tmp_path: Path, chmod: Chmod) -> None:
    path = a_ledger(tmp_path / "ledger.sqlite")
    chmod(path, 0o444)
    session = orn.Session(sandbox=True, ledger=Ledger(path))
    with pytest.raises(HomeFolderError, match="read-only"):
        session.ask("hello")
    sent = [r for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert sent == [] and session.quota.state().day_used == 0
    session.close()
