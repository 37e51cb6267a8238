"""In Colab the key also comes from its secrets store (``google.colab.userdata``).

Colab is an external service: a fake ``google.colab`` package on ``PYTHONPATH`` stands in for
it, in a subprocess so nothing of it leaks into this test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KEY = "sk-or-v1-" + "ab" * 32
PROBE = ("from openrouter_nb import config\n"
         "s = config.resolve()\n"
         "config.resolve()\n"
         "print(s.sandbox, s.api_key == KEY, repr(s))\n"
         "import google.colab.userdata as u; print(u.CALLS)\n")


def fake_colab(root: Path, body: str) -> Path:
    package = root / "google" / "colab"  # google/ stays a namespace package, as in Colab
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "userdata.py").write_text("CALLS = []\n" + body)
    return root


def probe(path: Path | None, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    clean.update(env)
    if path is not None:
        clean["PYTHONPATH"] = os.pathsep.join([str(path), clean.get("PYTHONPATH", "")])
    code = f"KEY = {KEY!r}\n" + PROBE
    done = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                          text=True, timeout=60)
    return (done.stdout + done.stderr).splitlines()


def test_key_from_colab_secrets(tmp_path: Path) -> None:
    root = fake_colab(tmp_path, f"def get(name):\n    CALLS.append(name)\n    return {KEY!r}\n")
    lines = probe(root, OPENROUTER_NB_HOME=str(tmp_path / "home"))
    assert lines[0].startswith("False True Settings(base_url='https://openrouter.ai/api/v1'")
    assert KEY not in "\n".join(lines) and "key=set" in lines[0]
    assert lines[1] == "['OPENROUTER_API_KEY']"  # read once per process


@pytest.mark.parametrize("body", [
    "class SecretNotFoundError(Exception): pass\n"
    "def get(name):\n    CALLS.append(name)\n    raise SecretNotFoundError(name)\n",
    "def get(name):\n    CALLS.append(name)\n    return ''\n",
])
def test_no_secret_means_sandbox(tmp_path: Path, body: str) -> None:
    lines = probe(fake_colab(tmp_path, body), OPENROUTER_NB_HOME=str(tmp_path / "home"))
    assert lines[0].startswith("True False")
    assert lines[1] == "['OPENROUTER_API_KEY']"


def test_environment_key_wins_and_colab_is_not_asked(tmp_path: Path) -> None:
    root = fake_colab(tmp_path, "def get(name):\n    CALLS.append(name)\n    return 'other'\n")
    lines = probe(root, OPENROUTER_API_KEY=KEY, OPENROUTER_NB_HOME=str(tmp_path / "home"))
    assert lines[0].startswith("False True")
    assert lines[1] == "[]"


def test_sandbox_setting_never_asks_colab(tmp_path: Path) -> None:
    root = fake_colab(tmp_path, "def get(name):\n    CALLS.append(name)\n    return 'x'\n")
    lines = probe(root, OPENROUTER_NB_SANDBOX="1", OPENROUTER_NB_HOME=str(tmp_path / "home"))
    assert lines[0].startswith("True False") and lines[1] == "[]"
