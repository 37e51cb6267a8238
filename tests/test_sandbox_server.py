"""Loopback server lifecycle, thread safety, the CLI, the exported surface and the layout."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

import openrouter_nb.sandbox as sandbox_pkg
from openrouter_nb.sandbox import Sandbox, SandboxServer, SandboxTransport, sandbox_key

AUTH = {"Authorization": f"Bearer {sandbox_key()}"}
BODY = {"model": "openai/gpt-oss-20b:free", "messages": [{"role": "user", "content": "hi"}]}


def test_exported_names() -> None:
    assert sandbox_pkg.__all__ == sorted(sandbox_pkg.__all__)
    for name in ("Sandbox", "SandboxTransport", "SandboxServer", "FAULTS", "sandbox_key"):
        assert hasattr(sandbox_pkg, name)


def test_sandbox_key_form() -> None:
    key = sandbox_key("alice")
    assert key.startswith("sk-or-v1-") and len(key) == 9 + 64
    assert key == sandbox_key("alice") != sandbox_key("bob")


def _hammer(client: httpx.Client, n: int) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(lambda _: client.post("/chat/completions", json=BODY), range(n)))
    assert all(r.status_code == 200 for r in rs)
    return [r.headers["x-generation-id"] for r in rs]


def test_transport_is_thread_safe() -> None:
    sb = Sandbox(rpm=1000, rpd=1000)
    client = httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                          headers=AUTH)
    ids = _hammer(client, 40)
    assert len(set(ids)) == 40 and len(sb.requests) == 40
    assert sb.quota.daily(sandbox_key())["used"] == 40


def test_server_concurrency_keepalive_and_restartable_stop() -> None:
    srv = SandboxServer(rpm=1000).start()
    with httpx.Client(base_url=srv.base_url, headers=AUTH, timeout=5) as client:
        assert len(set(_hammer(client, 24))) == 24
        idle = client.get("/key")  # leaves a keep-alive connection open
        assert idle.status_code == 200
        srv.stop()
    srv.stop()  # idempotent


def test_cli_serves_and_prints_url() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "openrouter_nb.sandbox", "--port", "0",
                             "--rpm", "5", "--seed", "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert sandbox_key() in line
        base_url = line.split("OPENROUTER_BASE_URL=")[1].split()[0]
        r = httpx.post(base_url + "/chat/completions", json=BODY, headers=AUTH, timeout=5)
        assert r.status_code == 200 and r.json()["model"] == BODY["model"]
    finally:
        proc.terminate()
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def test_server_header_names_the_sandbox() -> None:
    with SandboxServer() as srv:
        assert httpx.get(srv.base_url + "/models").headers["server"] == "openrouter-nb-sandbox"
    client = httpx.Client(transport=SandboxTransport(), base_url="http://t/api/v1")
    assert client.get("/models").headers["server"] == "openrouter-nb-sandbox"


SANDBOX = Path(sandbox_pkg.__file__).parent


def _imports(path: Path) -> set[str]:
    """Package modules ``path`` imports anywhere (top level, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            found.add("..")  # the client package: forbidden
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names]
            found |= {n.split(".")[2] for n in names
                      if n and n.startswith("openrouter_nb.sandbox.")}
            found |= {".." for n in names if n and n.startswith("openrouter_nb")
                      and not n.startswith("openrouter_nb.sandbox")}
    return found


def test_no_import_cycles_and_no_client_code() -> None:
    graph = {p.stem: _imports(p) for p in SANDBOX.glob("*.py")}
    assert not any(".." in deps for deps in graph.values())  # shares no code with the client

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for dep in graph.get(start, set()) - seen:
            if dep == goal or reaches(dep, goal, seen | {dep}):
                return True
        return False

    cycles = sorted(m for m in graph if m != "__init__" and reaches(m, m, set()))
    assert cycles == []
    assert "app" not in graph["chat"] and "app" not in graph["render"]


def test_functions_stay_short() -> None:
    long = [f"{p.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for p in SANDBOX.glob("*.py")
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and (node.end_lineno or 0) - node.lineno + 1 > 60]
    assert long == []
