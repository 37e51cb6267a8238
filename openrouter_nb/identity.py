"""Who is asking, in a class that shares one key: a name, and nothing else about the person.

The name comes from ``Session(person=...)``, else ``OPENROUTER_NB_PERSON``, else
``JUPYTERHUB_USER`` (set by JupyterHub in every participant's server). Instructors are the
names listed in ``OPENROUTER_NB_INSTRUCTORS`` (comma-separated): they see the whole class in
``orn.log()`` and ``orn.class_view()`` and may set budgets. This is the toolkit's own rule,
trusting the kernel's environment; see the JupyterHub recipe in the README for the database
roles that enforce it against a participant who edits their environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["EVERYONE", "instructors", "is_instructor", "person_name", "valid_person"]

#: The budget row that applies to every participant without one of their own.
EVERYONE = "*"

_NAME = re.compile(r"[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]{0,63}")


def valid_person(name: str, *, what: str = "person") -> str:
    """``name`` stripped, or a ``ValueError`` saying what a name may be."""
    cleaned = name.strip() if isinstance(name, str) else name
    if not isinstance(cleaned, str) or not _NAME.fullmatch(cleaned) or cleaned == EVERYONE:
        raise ValueError(f"{what} must be a name of 1 to 64 printable characters (not '*'), "
                         f"such as the participant's JupyterHub user name; got {name!r}.")
    return cleaned


def person_name(configured: str | None = None, env: Mapping[str, str] | None = None
                ) -> str | None:
    """The participant's name: ``configured``, ``OPENROUTER_NB_PERSON`` or
    ``JUPYTERHUB_USER``; None outside a class."""
    env = os.environ if env is None else env
    for value in (configured, env.get("OPENROUTER_NB_PERSON"), env.get("JUPYTERHUB_USER")):
        if value and value.strip():
            return valid_person(value)
    return None


def instructors(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The names in ``OPENROUTER_NB_INSTRUCTORS``."""
    env = os.environ if env is None else env
    return frozenset(name.strip() for name in env.get("OPENROUTER_NB_INSTRUCTORS", "").split(",")
                     if name.strip())


def is_instructor(person: str | None, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``person`` is one of the class's instructors."""
    return person is not None and person in instructors(env)
