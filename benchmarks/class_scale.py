"""A class on one key (issue 19): many participant processes, one PostgreSQL ledger and pacer.

A real PostgreSQL server (Debian's ``postgresql``, a throwaway cluster on a loopback port) and
the sandbox server (``--rpm 20 --window-s 6``, every request counted as OpenRouter counts it)
are started here. ``--participants`` processes (30) then ask a free model in a loop, each as
its own person, with the shared key, for ``--windows`` windows. Mid-run one participant is
killed with SIGKILL and the database is stopped and started again. Printed:

- quota 429s the sandbox had to send (target 0);
- the allowed rate used: requests the sandbox admitted per window over ``rpm``, from the end
  of the first window to the end of the run (target >= 0.95);
- fairness: the largest share over the smallest among participants who kept asking (<= 1.5);
- rows lost: attempts a participant saw finish whose row is not in the database (0), and the
  rows that waited in a local spool during the outage and were synced back;
- database transactions per request (pacing, rows and reads of every kernel): what waiting
  in line costs the server (informational).

    python benchmarks/class_scale.py [--participants 30] [--window-s 6] [--windows 6]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FREE = "meta-llama/llama-3.3-70b-instruct:free"
KEY_NAME = "class-of-30"


def participant(url: str, base_url: str, person: str, home: str, rpm: int, window_s: float,
                go: str) -> None:
    """One participant's kernel: once ready, wait for the file ``go`` (the start and end
    epochs), then ask until the end, one JSON line per attempt."""
    os.environ.update(OPENROUTER_NB_LEDGER=url, OPENROUTER_NB_PERSON=person,
                      OPENROUTER_NB_HOME=home, OPENROUTER_NB_DB_WAIT_S="60")
    import warnings

    from openrouter_nb.api.errors import OpenRouterError
    from openrouter_nb.sandbox import sandbox_key
    from openrouter_nb.session import Session

    warnings.simplefilter("ignore")  # the spool warning, expected during the outage
    session = Session(api_key=sandbox_key(KEY_NAME), base_url=base_url, sandbox=False,
                      retries=0, rpm=rpm, window_s=window_s, rpd=10**6, max_tokens=16)
    number = 0
    print(json.dumps({"ready": True}), flush=True)
    while not os.path.exists(go):  # the class starts together
        time.sleep(0.01)
    start, until = json.loads(Path(go).read_text())
    time.sleep(max(0.0, start - time.time()))
    while time.time() < until:
        number += 1
        try:
            answer = session.ask(f"{person} question {number}", model=FREE)
            line = {"call_id": answer.call_id, "ok": True, "t": time.time()}
        except OpenRouterError as error:
            line = {"call_id": getattr(error, "call_id", None), "ok": False, "kind": error.kind,
                    "message": error.message[:300]}
        print(json.dumps(line), flush=True)
    ledger: Any = session.ledger
    synced = ledger.sync() if hasattr(ledger, "sync") else 0
    print(json.dumps({"done": True, "synced": synced,
                      "spooled_left": len(ledger.spool) if hasattr(ledger, "spool") else 0}),
          flush=True)


def run_class(*, participants: int = 30, window_s: float = 6.0, windows: int = 6,
              rpm: int = 20, kill: bool = True, restart: bool = True,
              log: Any = print) -> dict[str, Any]:
    """Run the class; returns the figures (see the module docstring)."""
    from openrouter_nb.sandbox import Sandbox, SandboxServer
    from tests.postgres_server import PostgresServer

    sandbox = Sandbox(rpm=rpm, window_s=window_s, rpd=10**6, seed=19)
    decisions: list[tuple[float, str | None]] = []
    attempt = sandbox.quota.attempt

    def counted(key: str) -> Any:
        decision = attempt(key)
        decisions.append((time.time(), decision.kind))
        return decision

    sandbox.quota.attempt = counted  # type: ignore[method-assign]
    with PostgresServer() as database, SandboxServer(sandbox) as server, \
            tempfile.TemporaryDirectory() as homes:
        url = database.new_database("class_scale")
        go = f"{homes}/go.json"
        procs = [_spawn(url, server.base_url, f"p{i:02d}", f"{homes}/p{i:02d}", rpm, window_s,
                        go) for i in range(participants)]
        outputs = {f"p{i:02d}": _reader(proc) for i, proc in enumerate(procs)}
        _wait_ready(outputs, timeout=120.0)
        started = time.time() + 0.5
        until = started + windows * window_s
        Path(f"{go}.tmp").write_text(json.dumps([started, until]))
        os.replace(f"{go}.tmp", go)
        events = _disturb(procs, database, started, window_s, windows, kill, restart, log)
        for proc in procs:
            proc.wait(timeout=windows * window_s + 120)
        lines = {person: reader.join() for person, reader in outputs.items()}
        rows = _rows(url)
        events["db_transactions"] = _transactions(url)
    figures = _figures(decisions, lines, rows, started, until, window_s, rpm, events)
    figures["db_transactions_per_request"] = round(
        events["db_transactions"] / max(1, figures["sent"]), 1)
    return figures


def _transactions(url: str) -> int:
    """Transactions the database committed (every kernel's: pacing, rows, reads)."""
    import psycopg

    time.sleep(1.0)  # the statistics of the last transactions reach the view
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = "
                             "current_database()").fetchone()
    return int(found[0]) if found else 0


def _wait_ready(outputs: dict[str, _Lines], timeout: float) -> None:
    deadline = time.time() + timeout
    while not all(any(line.get("ready") for line in list(reader.lines))
                  for reader in outputs.values()):
        if time.time() > deadline:
            raise RuntimeError("participants not ready: " + "; ".join(
                reader.errors[-300:] for reader in outputs.values() if reader.errors))
        time.sleep(0.05)


def _spawn(url: str, base_url: str, person: str, home: str, rpm: int, window_s: float,
           go: str) -> subprocess.Popen[str]:
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "from benchmarks.class_scale import participant; "
            f"participant({url!r}, {base_url!r}, {person!r}, {home!r}, {rpm}, {window_s}, "
            f"{go!r})")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=str(ROOT))


class _Lines(threading.Thread):
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc, self.errors = proc, ""
        self.lines: list[dict[str, Any]] = []
        self.start()

    def run(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for text in self.proc.stdout:  # stderr comes here too: a line that is no JSON
                try:
                    self.lines.append(json.loads(text))
                except ValueError:
                    self.errors += text

    def join(self, timeout: float | None = None) -> list[dict[str, Any]]:  # type: ignore[override]
        super().join(timeout)
        return self.lines


def _reader(proc: subprocess.Popen[str]) -> _Lines:
    return _Lines(proc)


def _disturb(procs: list[subprocess.Popen[str]], database: Any, started: float,
             window_s: float, windows: int, kill: bool, restart: bool,
             log: Any) -> dict[str, Any]:
    """SIGKILL one participant at 40% of the run, stop the database for 2 s at 60%."""
    events: dict[str, Any] = {}
    span = windows * window_s
    if kill:
        _sleep_until(started + 0.4 * span)
        procs[0].send_signal(signal.SIGKILL)
        events["killed"] = "p00"
        log(f"  {time.time() - started:5.1f} s: participant p00 killed (SIGKILL)")
    if restart:
        _sleep_until(started + 0.6 * span)
        down = time.time()
        database.restart(down_s=2.0)
        events["restart_s"] = round(time.time() - down, 2)
        log(f"  {down - started:5.1f} s: database stopped, started again "
            f"{events['restart_s']} s later")
    return events


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _rows(url: str) -> list[tuple[str, str, str, int | None]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [tuple(row) for row in conn.execute(
            "SELECT person, call_id, status, http_status FROM attempts").fetchall()]


def _figures(decisions: list[tuple[float, str | None]], lines: dict[str, list[dict[str, Any]]],
             rows: list[tuple[str, str, str, int | None]], started: float, until: float,
             window_s: float, rpm: int, events: dict[str, Any]) -> dict[str, Any]:
    admitted = [t for t, kind in decisions if kind is None]
    rejected = Counter(kind for _t, kind in decisions if kind is not None)
    measured = [t for t in admitted if started + window_s <= t < until]
    allowed = rpm * (until - started - window_s) / window_s
    in_db: dict[str, set[str]] = {}
    for person, call_id, _status, _http in rows:
        in_db.setdefault(person, set()).add(call_id)
    seen = {person: [line for line in found if "call_id" in line and line["call_id"]]
            for person, found in lines.items()}
    lost = sum(1 for person, found in seen.items() for line in found
               if line["call_id"] not in in_db.get(person, set()))
    answered = {person: sum(1 for line in found if line.get("ok"))
                for person, found in seen.items() if person != events.get("killed")}
    synced = sum(line.get("synced", 0) for found in lines.values() for line in found
                 if line.get("done"))
    failures = Counter(line.get("kind") for found in seen.values() for line in found
                       if not line.get("ok"))
    return {
        "participants": len(lines), "sent": len(decisions), "admitted": len(admitted),
        "quota_429s": sum(rejected.values()), "rejected": dict(rejected),
        "rate_used": round(len(measured) / allowed, 3) if allowed else 0.0,
        "fairness": round(max(answered.values()) / max(1, min(answered.values())), 3)
        if answered else 0.0,
        "shares": sorted(answered.values()),
        "spread": max(answered.values()) - min(answered.values()) if answered else 0,
        "rows": len(rows),
        "attempts_seen": sum(len(found) for found in seen.values()),
        "rows_lost": lost, "synced_after_outage": synced,
        "failures": {str(k): v for k, v in failures.items()}, **events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--window-s", type=float, default=6.0)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--rpm", type=int, default=20)
    args = parser.parse_args()
    print(f"class of {args.participants} on one key: rpm {args.rpm} per {args.window_s} s "
          f"window, {args.windows} windows")
    figures = run_class(participants=args.participants, window_s=args.window_s,
                        windows=args.windows, rpm=args.rpm)
    for name, value in figures.items():
        print(f"  {name}: {value}")
    print(f"quota 429s: {figures['quota_429s']} (target 0); allowed rate used: "
          f"{figures['rate_used']} (target >= 0.95); fairness: {figures['fairness']} "
          f"(target <= 1.5); rows lost: {figures['rows_lost']} (target 0)")


if __name__ == "__main__":
    main()
