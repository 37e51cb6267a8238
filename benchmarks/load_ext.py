"""Cold ``%load_ext openrouter_nb`` cost over a bare ``InteractiveShell``.

Each sample is a fresh interpreter (so every import is cold): one times
``InteractiveShell.instance()``, the other the same plus ``run_line_magic('load_ext',
'openrouter_nb')``. Runs alternate; the difference of the medians is reported.

    python benchmarks/load_ext.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 15
SNIPPET = """
import time
t = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
if {load}:
    ip.run_line_magic("load_ext", "openrouter_nb")
print(time.perf_counter() - t)
"""


def sample(load: bool, env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", SNIPPET.format(load=load)], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               IPYTHONDIR=tempfile.mkdtemp(prefix="orn-bench-ipython-"))
    # A user's Python caches compiled modules; a shell that says not to would time compiling.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    sample(True, env)  # warm the OS file cache and write .pyc files
    bare: list[float] = []
    loaded: list[float] = []
    for _ in range(RUNS):
        bare.append(sample(False, env))
        loaded.append(sample(True, env))
    bare_ms, loaded_ms = statistics.median(bare) * 1000, statistics.median(loaded) * 1000
    print(f"runs: {RUNS} each; bare InteractiveShell median {bare_ms:.1f} ms, "
          f"with %load_ext openrouter_nb median {loaded_ms:.1f} ms")
    print(f"figure: load_ext_overhead = {loaded_ms - bare_ms:.1f} ms (target <= 150)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
