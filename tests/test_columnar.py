"""The ledger's columnar copy: chunk files round-trip exactly, stay in step with SQLite,
survive damage and concurrent kernels, and never cost a row."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openrouter_nb import ledger as ledger_module
from openrouter_nb.columnar import ChunkError, Numbers, block_from_rows, decode, encode, to_frame
from openrouter_nb.ledger import COLUMNS, Ledger

KINDS = {"n": "INTEGER", "x": "REAL"}
ROWS = [
    (1, 7, 0.5, "plain", "same"),
    (2, None, None, "it's \"quoted\",\nwith a newline", "same"),
    (5, 2**60, 1e300, "nul \x00 and emoji \U0001F600 and ünïcode", None),
    (9, -3, -0.0, "", "same"),
]


def test_a_block_round_trips_through_a_chunk_file() -> None:
    block = block_from_rows(ROWS, ["n", "x", "t", "u"], KINDS)
    back = decode(encode(block), ["n", "x", "t", "u"])
    assert back.ids.tolist() == [1, 2, 5, 9]
    # 2**60 does not fit a float exactly: the column keeps the values as SQLite gave them
    assert back.columns["n"].tolist() == [7, None, 2**60, -3]
    assert isinstance(back.columns["x"], Numbers)
    assert back.columns["x"].mask.tolist() == [False, True, False, False]
    assert back.columns["x"].values[[0, 2]].tolist() == [0.5, 1e300]
    assert back.columns["t"].tolist() == [row[3] for row in ROWS]
    assert back.columns["u"].tolist() == ["same", "same", None, "same"]


def test_numbers_that_are_not_numbers_are_kept_exactly() -> None:
    rows = [(1, "n/a", 1.5), (2, 4, None)]
    block = block_from_rows(rows, ["n", "m"], {"n": "INTEGER", "m": "INTEGER"})
    back = decode(encode(block), ["n", "m"])
    assert back.columns["n"].tolist() == ["n/a", 4]
    assert back.columns["m"].tolist() == [1.5, None]


@pytest.mark.parametrize("damage", [
    lambda data: b"NOTACHNK" + data[8:],
    lambda data: data[: len(data) // 2],
    lambda data: data[:16] + b"}" + data[17:],
])
def test_a_damaged_chunk_file_is_refused(damage) -> None:
    data = encode(block_from_rows(ROWS, ["n", "x", "t", "u"], KINDS))
    with pytest.raises(ChunkError):
        decode(damage(data), ["n", "x", "t", "u"])


def test_frame_dtypes_follow_the_schema_not_the_rows() -> None:
    names = ["epoch", "http_status", "cost", "sandbox", "provider"]
    empty = block_from_rows([(1, None, None, None, None, None)], names, ledger_module._TYPES)
    frame = to_frame(empty, ["time", "http_status", "cost", "sandbox", "provider"],
                     kinds=ledger_module._TYPES, booleans=("sandbox",))
    full = to_frame(block_from_rows([(2, 1.0e9, 200, 0.5, 1, "p")], names, ledger_module._TYPES),
                    ["time", "http_status", "cost", "sandbox", "provider"],
                    kinds=ledger_module._TYPES, booleans=("sandbox",))
    assert list(frame.dtypes) == list(full.dtypes)
    assert [str(d) for d in full.dtypes[1:4]] == ["Int64", "float64", "boolean"]
    assert frame.isna().all().all() and full.iloc[0]["http_status"] == 200


def row(n: int) -> dict:
    return dict(call_id=f"c{n}", attempt=1 + n % 3, requested_model="openrouter/free",
                served_model=f"m/{n % 4}:free", status="ok" if n % 5 else "error",
                error_kind=None if n % 5 else "rate_limit_minute",
                http_status=200 if n % 5 else 429, latency_s=n / 100, cost=0.0,
                validated=None if n % 2 else bool(n % 4), sandbox=True, prompt=f"prompt {n}",
                response=None if n % 5 == 0 else f"answer {n}", epoch=1_700_000_000 + n)


def sqlite_frame(ledger: Ledger) -> pd.DataFrame:
    """The whole table straight from SQLite, bypassing the chunk files."""
    with ledger._lock:
        block = ledger._sqlite_block(after=0)
    return to_frame(block, list(COLUMNS), kinds=ledger_module._TYPES,
                    booleans=ledger_module._BOOL_COLUMNS)


def chained(chunks: list[tuple[str, int, int, int]]) -> bool:
    """The chunks start at the first row and each begins where the one before ends."""
    return bool(chunks) and chunks[0][1] == 0 and all(
        before[2] == after[1] for before, after in zip(chunks, chunks[1:], strict=False))


def manifest(ledger: Ledger) -> list[tuple[str, int, int, int]]:
    return ledger._conn.execute(
        "SELECT file, after_id, last_id, rows FROM column_chunks ORDER BY after_id").fetchall()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(ledger_module, "CHUNK_ROWS", 8)
    return 8


def test_appends_are_copied_in_few_chunks_that_cover_every_row(
        tmp_path: Path, small_chunks: int) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    for n in range(100):
        ledger.record(**row(n))
    chunks = manifest(ledger)
    sizes = [rows for _file, _after, _last, rows in chunks]
    assert sizes == sorted(sizes, reverse=True) and len(chunks) <= 4  # 64 + 32: O(log n)
    assert chained(chunks)
    assert sum(sizes) == 96  # the last 4 rows wait in SQLite for the next copy
    on_disk = sorted(path.name for path in ledger.columns_dir.iterdir())
    assert on_disk == sorted(file for file, *_ in chunks)
    pd.testing.assert_frame_equal(Ledger(tmp_path / "l.sqlite").dataframe(columns="all"),
                                  sqlite_frame(ledger))


def test_a_new_kernel_reads_only_the_uncopied_rows_from_sqlite(
        tmp_path: Path, small_chunks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = Ledger(tmp_path / "l.sqlite")
    writer.record_many(row(n) for n in range(50))
    reader = Ledger(tmp_path / "l.sqlite")
    read: list[int] = []
    original = Ledger._sqlite_block

    def spy(self: Ledger, *, after: int, upto: int | None = None):
        block = original(self, after=after, upto=upto)
        read.append(len(block))
        return block

    monkeypatch.setattr(Ledger, "_sqlite_block", spy)
    frame = reader.dataframe()
    assert len(frame) == 50 and read == [0]  # 50 rows, none of them from SQLite
    assert frame["call_id"].tolist() == [f"c{n}" for n in range(50)]


def test_an_old_ledger_gets_its_copy_from_the_first_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "CHUNK_ROWS", 10_000)
    Ledger(tmp_path / "l.sqlite").record_many(row(n) for n in range(40))  # no copy yet
    monkeypatch.setattr(ledger_module, "CHUNK_ROWS", 8)
    ledger = Ledger(tmp_path / "l.sqlite")
    assert manifest(ledger) == []
    first = ledger.dataframe(columns="all")
    assert [rows for *_, rows in manifest(ledger)] == [40]
    pd.testing.assert_frame_equal(Ledger(tmp_path / "l.sqlite").dataframe(columns="all"), first)


@pytest.mark.parametrize("damage", ["delete folder", "corrupt file", "truncate file"])
def test_damaged_chunks_cost_nothing_and_are_rebuilt(
        tmp_path: Path, small_chunks: int, damage: str) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record_many(row(n) for n in range(30))
    expected = sqlite_frame(ledger)
    files = list(ledger.columns_dir.iterdir())
    if damage == "delete folder":
        for path in files:
            path.unlink()
        ledger.columns_dir.rmdir()
    elif damage == "corrupt file":
        files[0].write_bytes(b"ORNCOLS1" + b"\xff" * 64)
    else:
        files[0].write_bytes(files[0].read_bytes()[:200])
    fresh = Ledger(tmp_path / "l.sqlite")
    pd.testing.assert_frame_equal(fresh.dataframe(columns="all"), expected)
    healed = manifest(fresh)
    assert sum(rows for *_, rows in healed) == 30
    assert all((fresh.columns_dir / file).is_file() for file, *_ in healed)
    pd.testing.assert_frame_equal(Ledger(tmp_path / "l.sqlite").dataframe(columns="all"), expected)


def test_leftovers_of_a_kernel_that_died_mid_copy_are_swept(tmp_path: Path, small_chunks: int) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.columns_dir.mkdir()
    stray = ledger.columns_dir / "000000000001-000000000008-deadbeef.cols.tmp"
    stray.write_bytes(b"half a file")
    ledger.record_many(row(n) for n in range(8))
    assert not stray.exists() and len(manifest(ledger)) == 1


def test_a_copy_that_cannot_be_written_loses_no_row(
        tmp_path: Path, small_chunks: int, caplog: pytest.LogCaptureFixture) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.columns_dir.write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger="openrouter_nb.ledger"):
        ids = [ledger.record(**row(n)) for n in range(10)]
    assert ids == list(range(1, 11)) and len(ledger) == 10
    assert "columnar copy failed" in caplog.text and manifest(ledger) == []
    assert ledger.dataframe()["call_id"].tolist() == [f"c{n}" for n in range(10)]


def test_kernels_appending_together_share_one_consistent_copy(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    code = (
        "import sys\n"
        "from openrouter_nb import ledger as m\n"
        "m.CHUNK_ROWS = 16\n"
        "l = m.Ledger(sys.argv[1])\n"
        "for n in range(150):\n"
        "    l.record(call_id=f'{sys.argv[2]}-{n}', status='ok', latency_s=n / 10)\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", code, str(path), name]) for name in "ab"]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    ledger = Ledger(path)
    chunks = manifest(ledger)
    assert chained(chunks)
    frame = ledger.dataframe(columns="all")
    assert len(frame) == 300 and frame["call_id"].is_unique
    pd.testing.assert_frame_equal(frame, sqlite_frame(ledger))
    assert np.array_equal(frame["latency_s"].to_numpy(), sqlite_frame(ledger)["latency_s"].to_numpy())


def test_a_chunk_merged_away_while_reading_is_not_damage(
        tmp_path: Path, small_chunks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another kernel may merge (and delete) a chunk between our manifest read and our file
    read: read again with the new manifest, without rebuilding the copy."""
    Ledger(tmp_path / "l.sqlite").record_many(row(n) for n in range(24))
    reader = Ledger(tmp_path / "l.sqlite")
    before = manifest(reader)
    original, failures = Ledger._read_chunk, []

    def vanishing_once(self: Ledger, chunk, names):
        if not failures:
            failures.append(chunk.file)
            raise FileNotFoundError(chunk.file)
        return original(self, chunk, names)

    monkeypatch.setattr(Ledger, "_read_chunk", vanishing_once)
    frame = reader.dataframe(columns="all")
    assert failures and not reader._damaged and manifest(reader) == before
    pd.testing.assert_frame_equal(frame, sqlite_frame(reader))


def test_a_failing_rebuild_is_not_retried_on_every_frame(
        tmp_path: Path, small_chunks: int, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record_many(row(n) for n in range(20))
    for path in ledger.columns_dir.iterdir():
        path.unlink()
    ledger.columns_dir.rmdir()
    ledger.columns_dir.write_text("not a folder")  # the copy cannot be written again
    fresh = Ledger(tmp_path / "l.sqlite")
    copies: list[int] = []
    original = Ledger._copy_to_chunks
    monkeypatch.setattr(Ledger, "_copy_to_chunks",
                        lambda self, *a: (copies.append(1), original(self, *a))[1])
    assert len(fresh.dataframe()) == 20 and copies == [1]
    fresh.record(**row(20))
    assert len(fresh.dataframe()) == 21 and copies == [1]  # a warm frame does not retry
