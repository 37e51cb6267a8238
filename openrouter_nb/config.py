"""Where the key, the base URL, the sandbox switch and the ledger folder come from.

Rules (DESIGN.md): ``OPENROUTER_API_KEY`` is the key (or one entered with
``%openrouter key``, kept in memory only); ``OPENROUTER_BASE_URL`` points elsewhere;
``OPENROUTER_NB_SANDBOX=1`` forces the in-process sandbox; with no key and no base URL
the sandbox is used automatically and the output says so. ``OPENROUTER_NB_HOME`` holds
the ledger (default ``~/.openrouter_nb``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api.client import DEFAULT_BASE_URL

SANDBOX_BASE_URL = "http://sandbox.openrouter-nb.local/api/v1"
_TRUE = {"1", "true", "yes", "on"}

# A key entered in the notebook (%openrouter key): process memory only, never on disk.
_memory_key: str | None = None


def set_memory_key(key: str | None) -> None:
    """Keep a key for this process only (used by the masked key widget)."""
    global _memory_key
    _memory_key = key.strip() if key and key.strip() else None


def memory_key() -> str | None:
    return _memory_key


_colab: list[str | None] = []  # the Colab secret, read at most once a process


def colab_key() -> str | None:
    """``OPENROUTER_API_KEY`` from Colab's secrets (the key icon in Colab's sidebar).

    Only when ``google.colab`` is importable (in Colab); read once per process, so Colab asks
    for notebook access at most once. Any failure (no such secret, access refused) is "no
    key": the sandbox is used and says why. After adding the secret, restart the runtime.
    """
    if not _colab:
        import importlib.util

        value = None
        try:
            if importlib.util.find_spec("google.colab") is not None:
                from google.colab import userdata  # type: ignore[import-not-found]

                value = userdata.get("OPENROUTER_API_KEY")
        except Exception:  # SecretNotFoundError, NotebookAccessError, TimeoutException...
            value = None
        _colab.append(value.strip() or None if isinstance(value, str) else None)
    return _colab[0]


@dataclass(frozen=True)
class Settings:
    """The resolved connection settings of a session."""

    api_key: str | None
    base_url: str
    sandbox: bool
    home: Path
    reason: str  # why this mode was chosen, shown to the user

    @property
    def account(self) -> str:
        """A fingerprint that tells keys apart in the ledger without storing them."""
        if self.sandbox:
            return "sandbox"
        return account_fingerprint(self.api_key)

    def __repr__(self) -> str:  # never show the key
        return (f"Settings(base_url={self.base_url!r}, sandbox={self.sandbox}, "
                f"home={str(self.home)!r}, key={'set' if self.api_key else 'unset'})")


def account_fingerprint(api_key: str | None) -> str:
    if not api_key:
        return "anonymous"
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:10]


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("OPENROUTER_NB_HOME") or Path.home() / ".openrouter_nb").expanduser()


def resolve(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    sandbox: bool | None = None,
    home: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Apply the DESIGN.md rules to explicit arguments, then the environment."""
    env = os.environ if env is None else env
    folder = Path(home).expanduser() if home is not None else home_dir(env)
    key = api_key or env.get("OPENROUTER_API_KEY") or memory_key() or None
    url = base_url or env.get("OPENROUTER_BASE_URL") or None
    if sandbox is None and env.get("OPENROUTER_NB_SANDBOX", "").strip().lower() in _TRUE:
        return Settings(None, SANDBOX_BASE_URL, True, folder,
                        "sandbox: OPENROUTER_NB_SANDBOX=1, answers are simulated")
    if sandbox:
        return Settings(None, SANDBOX_BASE_URL, True, folder, "sandbox: answers are simulated")
    if key is None and env is os.environ:  # in Colab: its secrets store (read once)
        key = colab_key()
    if sandbox is None and not key and not url:
        return Settings(None, SANDBOX_BASE_URL, True, folder,
                        "sandbox: no OPENROUTER_API_KEY set, answers are simulated")
    return Settings(key, (url or DEFAULT_BASE_URL).rstrip("/"), False, folder,
                    f"live: {url or DEFAULT_BASE_URL}")


# -- profiles ------------------------------------------------------------------------------------
PROFILE_FILE = "openrouter_nb.toml"
PROFILE_FIELDS = ("model", "fallback", "provider", "max_tokens", "budget", "base_url", "retries",
                  "timeout", "temperature", "system", "sandbox", "cache", "ledger_url")


@dataclass(frozen=True)
class Profile:
    """A named set of session defaults, so code names ``dev``/``prod``, not model ids."""

    name: str
    model: str | None = None
    fallback: tuple[str, ...] = ()
    provider: dict[str, Any] | None = None
    max_tokens: int | None = None
    budget: int | None = None
    base_url: str | None = None
    retries: int | None = None
    timeout: float | None = None
    temperature: float | None = None
    system: str | None = None
    sandbox: bool | None = None
    cache: bool | None = None  # answer identical requests from the ledger
    ledger_url: str | None = None  # a class's PostgreSQL ledger (no password: see load_profiles)
    source: str = ""

    def describe(self) -> str:
        parts = [f"profile {self.name!r}: model {self.model or 'openrouter/free'}"]
        if self.fallback:
            parts.append("fallback " + ", ".join(self.fallback))
        if self.provider:
            parts.append("provider " + ", ".join(f"{k}={v}" for k, v in self.provider.items()))
        for name in ("max_tokens", "budget", "retries", "base_url"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} {value}")
        source = Path(self.source)
        try:
            source = source.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            pass  # outside the working folder: keep it absolute
        return "; ".join(parts) + f" (from {source})"


def profile_file(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """``openrouter_nb.toml`` in the working folder, else ``$OPENROUTER_NB_HOME/config.toml``."""
    local = (cwd or Path.cwd()) / PROFILE_FILE
    if local.is_file():
        return local
    home = home_dir(env) / "config.toml"
    return home if home.is_file() else None


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Read ``[profiles.NAME]`` tables; a key in the file is refused, never read."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    path = path or profile_file()
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read profiles from {path}: {exc}") from None
    place = key_place(data)
    if place is not None:
        raise ValueError(f"{path} holds a key at {place}: keys do not belong in files. Remove "
                         "it and set OPENROUTER_API_KEY instead (or enter it with %openrouter "
                         "key).")
    profiles = {}
    for name, table in (data.get("profiles") or {}).items():
        if not isinstance(table, dict):
            raise ValueError(f"[profiles.{name}] in {path} must be a table.")
        unknown = set(table) - set(PROFILE_FIELDS)
        if unknown:
            raise ValueError(f"[profiles.{name}] in {path} has unknown field(s) "
                             f"{', '.join(sorted(unknown))}; known: {', '.join(PROFILE_FIELDS)}.")
        values = dict(table)
        _no_password(values.get("ledger_url"), f"[profiles.{name}] in {path}")
        if "fallback" in values:
            values["fallback"] = tuple(values["fallback"])
        profiles[name] = Profile(name=name, source=str(path), **values)
    return profiles


def _no_password(url: object, where: str) -> None:
    """A password in a profile's ``ledger_url`` is refused, like a key."""
    from .pg_db import safe_url

    if isinstance(url, str) and safe_url(url) != url.split("#", 1)[0]:
        raise ValueError(f"{where} holds a password in ledger_url: passwords do not belong in "
                         "files. Remove it and use PGPASSWORD or ~/.pgpass, or set the whole "
                         "URL in OPENROUTER_NB_LEDGER.")


#: Field names that hold a key, whatever their value (compared lower-case, ``-`` as ``_``).
KEY_FIELDS = frozenset({"api_key", "apikey", "key", "openrouter_api_key", "authorization",
                        "bearer", "token", "access_token"})
_KEY_LIKE = re.compile(r"sk-or-[a-z0-9][a-z0-9_-]{7,}", re.IGNORECASE)


def key_place(value: Any, place: str = "") -> str | None:
    """Where a key sits in parsed TOML (``profiles.dev.provider.api_key``,
    ``profiles.dev.fallback[1]``), or None: a field named like one (:data:`KEY_FIELDS`) or
    text shaped like an OpenRouter key (``sk-or-…``), at any depth. The key is never shown."""
    if isinstance(value, str):
        return place if _KEY_LIKE.search(value) else None
    if isinstance(value, list):
        places = (key_place(item, f"{place}[{index}]") for index, item in enumerate(value))
        return next((where for where in places if where), None)
    if isinstance(value, dict):
        for name, item in value.items():
            shaped = bool(_KEY_LIKE.search(name))
            shown = '"sk-or-…"' if shaped else (
                name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name))
            here = f"{place}.{shown}" if place else shown
            if shaped or name.lower().replace("-", "_") in KEY_FIELDS:
                return here
            found = key_place(item, here)
            if found:
                return found
    return None


def get_profile(name: str, path: Path | None = None) -> Profile:
    profiles = load_profiles(path)
    if name not in profiles:
        where = path or profile_file()
        known = ", ".join(sorted(profiles)) or "none"
        raise KeyError(f"No profile {name!r} (known: {known}; file: "
                       f"{where or f'no {PROFILE_FILE} here and no config.toml in the home folder'}).")
    return profiles[name]
