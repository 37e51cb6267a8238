"""JupyterLab on loopback and a headless chromium driven by Playwright's sync API.

Everything here skips cleanly (``pytest.skip`` with the reason) when the ``playwright`` or
``jupyterlab`` package or a ``chromium`` executable is missing, so the default suite still passes
on machines without a browser. ``playwright install`` cannot download here and is never needed:
the system chromium is launched through ``executable_path``. pytest-playwright is not used.

The server runs in a throw-away root folder with the sandbox forced on, no key, final-only
answer display and isolated Jupyter config, runtime, settings and workspace folders. At the end
it gets SIGTERM (it then shuts its kernels down), SIGKILL if it hangs, and the teardown fails if
any kernel it started is still running.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVER_START_S = 60.0
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: JupyterLab user settings for the run: every cell attached to the DOM (no windowing, so
#: off-screen outputs can be asserted on), and no news feed request.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def chromium_path() -> str | None:
    """``/usr/bin/chromium``, else ``chromium`` (or ``chromium-browser``) on ``PATH``."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        response.read()
        return int(response.status)


@dataclass
class LabServer:
    url: str
    root: Path
    runtime: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def lab_environment(base: Path) -> dict[str, str]:
    """The server's (and so its kernels') environment: sandbox on, no key, isolated Jupyter."""
    env = dict(os.environ)
    for name in ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_NB_REPLAY",
                 "JUPYTER_TOKEN", "JUPYTER_PASSWORD"):
        env.pop(name, None)
    folders = {name: base / name for name in ("home", "config", "runtime", "settings",
                                              "workspaces")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name, settings in LAB_SETTINGS.items():
        path = folders["settings"] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env.update({
        "OPENROUTER_NB_SANDBOX": "1",
        "OPENROUTER_NB_HOME": str(folders["home"]),
        "OPENROUTER_NB_STREAM_DISPLAY": "final",
        "JUPYTER_CONFIG_DIR": str(folders["config"]),
        "JUPYTER_RUNTIME_DIR": str(folders["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(folders["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(folders["workspaces"]),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _unavailable(reason: str) -> None:
    """Skip, unless OPENROUTER_NB_REQUIRE_BROWSER is set (CI): then a missing browser fails."""
    if os.environ.get("OPENROUTER_NB_REQUIRE_BROWSER"):
        pytest.fail(f"browser tests required but unavailable: {reason}")
    pytest.skip(reason)


def _require(module: str, hint: str) -> None:
    """Skip (not error) when ``module`` cannot be imported, whatever the ImportError."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        _unavailable(f"{module} is not importable ({error}); {hint}")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    _require("playwright.sync_api", "pip install playwright; never `playwright install`: "
                                    "the system chromium is used")
    path = chromium_path()
    if path is None:
        _unavailable("no chromium executable (/usr/bin/chromium or chromium on PATH); "
                     "install it with: apt-get install -y chromium")
    return path


#: the two frontends: the module to run and its app class (for ``expose_app_in_browser``)
FRONTENDS = {"lab": ("jupyterlab", "LabApp"), "notebook": ("notebook", "JupyterNotebookApp")}


@contextlib.contextmanager
def jupyter_server(base: Path, flavor: str = "lab",
                   env: dict[str, str] | None = None) -> Iterator[LabServer]:
    """JupyterLab or Notebook 7 on a free loopback port, no token, ``window.jupyterapp``.

    ``env`` is added to :func:`lab_environment` (e.g. live streaming display for one test).
    """
    module, app = FRONTENDS[flavor]
    _require(module, f"pip install {'notebook>=7' if flavor == 'notebook' else 'jupyterlab'}")
    root = base / "root"
    root.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / f"{flavor}.log"
    command = [
        sys.executable, "-m", module, "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=",
        f"--{app}.expose_app_in_browser=True", f"--ServerApp.root_dir={root}",
    ]
    environment = {**lab_environment(base), **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=environment, cwd=root)
    server = LabServer(url=url, root=root, runtime=base / "runtime", log=log,
                       process=process)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"{module} exited with code {process.returncode}:\n"
                            f"{server.log_tail()}")
            with contextlib.suppress(OSError):
                if _get(f"{url}/api") == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{module} did not answer {url}/api within {SERVER_START_S:.0f} s:"
                            f"\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory,
               chromium_executable: str) -> Iterator[LabServer]:
    """JupyterLab on a free loopback port, no token, ``window.jupyterapp`` exposed."""
    with jupyter_server(tmp_path_factory.mktemp("lab"), "lab") as server:
        yield server


def _stop(server: LabServer) -> None:
    """SIGTERM (the server then shuts its kernels down), SIGKILL after a grace period; then
    make sure no kernel of this server outlived it."""
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (left := _processes_mentioning(server.runtime)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # kernels are started with `-f <our runtime dir>/kernel-<id>.json`
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if left:
        pytest.fail(f"JupyterLab left {len(left)} kernel process(es) running (killed): {left}")


def _processes_mentioning(path: Path) -> list[int]:
    """Pids whose command line mentions ``path`` (Linux ``/proc``; empty elsewhere)."""
    needle = str(path).encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes() and int(entry.name) != os.getpid():
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop running in this
    # thread while it is open, and tests after the browser ones call asyncio.run().
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable,
                                              headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()
