"""The throwaway PostgreSQL server of tests/postgres_server.py, against the real binaries."""

from __future__ import annotations

import os

import psycopg
import pytest

from .postgres_server import PostgresServer, available


def _require() -> None:
    reason = available()
    if reason is not None:
        if os.environ.get("OPENROUTER_NB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"OPENROUTER_NB_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)


def test_session_server_answers(postgres: PostgresServer) -> None:
    assert postgres.running
    assert postgres.url.startswith(f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/")
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        row = conn.execute("SELECT current_database(), current_setting('max_connections'),"
                           " current_setting('listen_addresses'), current_setting('fsync')"
                           ).fetchone()
    assert row == (postgres.database, "300", "127.0.0.1", "off")


def test_new_database_is_empty_and_separate(postgres: PostgresServer, postgres_url: str) -> None:
    with psycopg.connect(postgres.url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS shared_marker (x int)")
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() != (postgres.database,)
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                              ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE mine (x int)")
    other = postgres.new_database("t_other_" + os.urandom(4).hex())
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT to_regclass('mine')").fetchone() == (None,)


def test_new_database_rejects_odd_names(postgres: PostgresServer) -> None:
    with pytest.raises(ValueError):
        postgres.new_database('x"; DROP DATABASE postgres; --')


def test_restart_keeps_committed_rows() -> None:
    _require()
    with PostgresServer(database="restart_test") as server:
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('before restart')")
        with psycopg.connect(server.url) as stale:
            server.restart()
            with pytest.raises(psycopg.OperationalError):
                stale.execute("SELECT 1")
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("before restart",)]
            conn.execute("INSERT INTO kept VALUES ('after restart')")
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (2,)


def test_stop_removes_the_temp_dir() -> None:
    _require()
    server = PostgresServer()
    server.start()
    tmp = server.tmp_dir
    assert tmp is not None and (tmp / "data" / "postmaster.pid").exists()
    assert server.start_seconds is not None
    server.stop()
    assert not tmp.exists()
    assert not server.running
    server.stop()  # a second stop is harmless
