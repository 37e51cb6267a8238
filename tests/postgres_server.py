"""A throwaway PostgreSQL server on a loopback port, for tests and benchmarks (no mocks).

It runs the binaries of Debian's ``postgresql`` package; as root they run as the ``postgres``
system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresError", "PostgresServer", "available", "bin_dir"]

_SYSTEM_USER = "postgres"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PostgresError(RuntimeError):
    """The server could not be set up, started, restarted or used."""


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version))


def bin_dir() -> Path | None:
    """The directory of initdb/pg_ctl/postgres (highest installed version), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key)
    if candidates:
        return Path(candidates[-1])
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if out:
            return Path(out)
    return None


def available() -> str | None:
    """Why a server cannot run here, or None when it can."""
    found = bin_dir()
    if found is None:
        return "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin; apt-get install postgresql)"
    for tool in ("initdb", "pg_ctl", "postgres", "pg_isready", "createdb"):
        if not os.access(found / tool, os.X_OK):
            return f"PostgreSQL's {tool} is missing from {found}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_SYSTEM_USER)
        except KeyError:
            return f"running as root and there is no {_SYSTEM_USER!r} system user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """A PostgreSQL server in a temporary directory, trusting connections from 127.0.0.1."""

    def __init__(self, user: str = "orn_test", database: str = "openrouter_nb_test") -> None:
        for name in (user, database):
            if not _NAME.fullmatch(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")
        self.user = user
        self.database = database
        self.port: int | None = None
        self.tmp_dir: Path | None = None
        self.start_seconds: float | None = None
        self._bin: Path | None = None
        self._running = False

    # -- paths and commands ----------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._tmp() / "data"

    @property
    def log_path(self) -> Path:
        return self._tmp() / "server.log"

    @property
    def url(self) -> str:
        """``postgresql://USER@127.0.0.1:PORT/DB`` for the server's test database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """The URL of ``database`` on this server."""
        if self.port is None:
            raise PostgresError("the server is not started")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _tmp(self) -> Path:
        if self.tmp_dir is None:
            raise PostgresError("the server is not started")
        return self.tmp_dir

    def _tool(self, name: str) -> str:
        if self._bin is None:
            raise PostgresError("the server is not started")
        return str(self._bin / name)

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", _SYSTEM_USER, "--", *argv]
        return argv

    def _run(self, argv: list[str], *, server_user: bool = True,
             timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        cmd = self._as_server_user(argv) if server_user else argv
        try:
            return subprocess.run(cmd, cwd=self._tmp(), env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{argv[0]} timed out after {timeout}s{self._log_tail()}") from exc

    def _check(self, what: str, done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            raise PostgresError(f"{what} failed (exit {done.returncode}): "
                                f"{(done.stdout + done.stderr).strip()}{self._log_tail()}")

    def _log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, PostgresError):
            return ""
        return f"\n--- server log {self.log_path} ---\n{text[-chars:]}"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Make a cluster in a temp dir, start it and create the test database."""
        if self._running:
            return self
        reason = available()
        if reason is not None:
            raise PostgresError(reason)
        began = time.monotonic()
        self._bin = bin_dir()
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="orn-pg-"))
        try:
            if os.geteuid() == 0:
                entry = pwd.getpwnam(_SYSTEM_USER)
                os.chown(self.tmp_dir, entry.pw_uid, entry.pw_gid)
            self._check("initdb", self._run([
                self._tool("initdb"), "-D", str(self.data_dir), "-U", self.user,
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]))
            (self.data_dir / "pg_hba.conf").write_text(
                "# trust on loopback only (a throwaway test server)\n"
                "host all all 127.0.0.1/32 trust\n")
            self._start_on_free_port()
            self._check("createdb", self._run(
                [self._tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                 self.database], server_user=False))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _write_settings(self, port: int) -> None:
        settings = {
            "port": str(port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self._tmp()}'",
            "max_connections": "300",
            "shared_buffers": "32MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
        }
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.data_dir / "postgresql.auto.conf").write_text(
            "# written by tests/postgres_server.py\n" + lines)

    def _start_on_free_port(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            self.port = _free_port()
            self._write_settings(self.port)
            done = self._run([self._tool("pg_ctl"), "start", "-D", str(self.data_dir),
                              "-l", str(self.log_path), "-w", "-t", "60"])
            if done.returncode == 0:
                self._running = True
                self._wait_ready()
                return
            # Another process may have taken the port between our probe and the server's bind.
            if "could not bind" not in self._log_tail() or attempt == attempts - 1:
                self._check("pg_ctl start", done)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            done = self._run([self._tool("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", self.user, "-t", "5"], server_user=False)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                self._check("pg_isready", done)
            time.sleep(0.05)

    def restart(self, down_s: float = 0.0) -> None:
        """``pg_ctl restart -m fast`` (or, with ``down_s``, a fast stop, that many seconds
        down, and a start); returns once it accepts connections again."""
        if not self._running:
            raise PostgresError("the server is not started")
        if down_s <= 0:
            self._check("pg_ctl restart", self._run([
                self._tool("pg_ctl"), "restart", "-D", str(self.data_dir), "-m", "fast",
                "-l", str(self.log_path), "-w", "-t", "60"]))
        else:
            self._check("pg_ctl stop", self._run([
                self._tool("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
                "-t", "60"]))
            time.sleep(down_s)
            self._check("pg_ctl start", self._run([
                self._tool("pg_ctl"), "start", "-D", str(self.data_dir), "-l",
                str(self.log_path), "-w", "-t", "60"]))
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server (fast, else immediate) and remove the temp dir; safe to repeat."""
        try:
            if self.tmp_dir is not None and (self.data_dir / "postmaster.pid").exists():
                pid = self._postmaster_pid()
                done = self._run([self._tool("pg_ctl"), "stop", "-D", str(self.data_dir),
                                  "-m", "fast", "-w", "-t", "30"], timeout=60)
                if done.returncode != 0:
                    done = self._run([self._tool("pg_ctl"), "stop", "-D", str(self.data_dir),
                                      "-m", "immediate", "-w", "-t", "30"], timeout=60)
                if done.returncode != 0 and pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        except PostgresError:
            pass
        finally:
            self._running = False
            if self.tmp_dir is not None:
                shutil.rmtree(self.tmp_dir, ignore_errors=True)
                self.tmp_dir = None

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        return self._running

    # -- databases ------------------------------------------------------------------------

    def new_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
        if not self._running:
            raise PostgresError("the server is not started")
        self._check(f"createdb {name}", self._run(
            [self._tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             name], server_user=False))
        return self.url_for(name)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
