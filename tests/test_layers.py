"""The layers of DESIGN.md, checked from the source's imports (``ast``, nothing is imported).

protocol (``api/``) <- storage (ledger) <- policy <- session/pipeline <- notebook <- the package
facade. A module imports only from its own layer or lower ones; the sandbox imports nothing of
the client; only ``notebook/`` imports IPython or ipywidgets; pandas is imported at module level
only by the opt-in ``openrouter_nb.pandas`` and the notebook layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "openrouter_nb"

RANK = {"util": 0, "protocol": 1, "storage": 2, "policy": 3, "session": 4, "notebook": 5,
        "facade": 6}
# Modules not named here (and not under api/, notebook/, sandbox/) are the session layer.
LAYER = {
    "openrouter_nb": "facade",
    "openrouter_nb.pandas": "facade",  # opt-in ``df.openrouter``, built on the package's batch
    "openrouter_nb._text": "util",
    "openrouter_nb._version": "util",
    "openrouter_nb.ledger": "storage",
    "openrouter_nb.ledger_file": "storage",
    "openrouter_nb.columnar": "storage",
    "openrouter_nb.pg_db": "storage",  # the class database (PostgreSQL)
    "openrouter_nb.ledger_pg": "storage",
    "openrouter_nb.spool": "storage",
    "openrouter_nb.store": "storage",
    "openrouter_nb.class_gate": "policy",  # shared pacing and budgets, on the class database
    "openrouter_nb.identity": "policy",
    "openrouter_nb.quota": "policy",
    "openrouter_nb.retry": "policy",
    "openrouter_nb.privacy": "policy",
    "openrouter_nb.catalog": "policy",
    "openrouter_nb.validate": "policy",
    "openrouter_nb.config": "policy",
    "openrouter_nb.cost": "policy",
    "openrouter_nb.budget": "policy",
}
# Client layers that may start the sandbox (the in-process transport, fault names).
MAY_USE_SANDBOX = {"session", "notebook", "facade"}
NOTEBOOK_ONLY = {"IPython", "ipywidgets"}
LAZY_ONLY = {"pandas"}


def layer_of(module: str) -> str:
    if module in LAYER:
        return LAYER[module]
    for prefix, layer in (("openrouter_nb.api", "protocol"), ("openrouter_nb.notebook", "notebook"),
                          ("openrouter_nb.sandbox", "sandbox")):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return "session"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import outside ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level: set[int] = set()
    typing_only: set[int] = set()

    def mark(body: list[ast.stmt]) -> None:
        for stmt in body:
            top_level.add(id(stmt))
            if isinstance(stmt, ast.If) and _is_type_checking(stmt):
                typing_only.update(id(node) for node in ast.walk(stmt))
            elif isinstance(stmt, ast.If):
                mark(stmt.body)
                mark(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                for block in (stmt.body, stmt.orelse, stmt.finalbody,
                              *[h.body for h in stmt.handlers]):
                    mark(block)

    mark(tree.body)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                if node.module:
                    names = [".".join([*base, node.module])]
                else:  # ``from . import x``: x is a submodule (or a name of the package)
                    names = [".".join([*base, alias.name]) for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        if id(node) in typing_only:
            continue
        found += [(name, id(node) in top_level) for name in names]
    return found


def _target(name: str, modules: dict[str, Path]) -> str:
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name


def violations() -> list[str]:
    modules = _modules()
    problems = []
    for module, path in modules.items():
        mine = layer_of(module)
        for name, top in _imports(module, path):
            root = name.split(".")[0]
            if root in NOTEBOOK_ONLY and mine != "notebook":
                problems.append(f"{module} imports {name} (only notebook/ may)")
            if root in LAZY_ONLY and top and mine != "notebook" and module != "openrouter_nb.pandas":
                problems.append(f"{module} imports {name} at module level (import it lazily)")
            if root != "openrouter_nb":
                continue
            theirs = layer_of(_target(name, modules))
            if mine == "sandbox" or theirs == "sandbox":
                if mine == "sandbox" and theirs != "sandbox":
                    problems.append(f"{module} (sandbox) imports client code {name}")
                if mine != "sandbox" and mine not in MAY_USE_SANDBOX:
                    problems.append(f"{module} ({mine}) imports the sandbox ({name})")
                continue
            if RANK[theirs] > RANK[mine]:
                problems.append(f"{module} ({mine}) imports {name} ({theirs})")
    return problems


def test_layers_import_only_downwards() -> None:
    assert violations() == []


def test_the_checker_sees_a_violation() -> None:
    modules = _modules()
    assert layer_of("openrouter_nb.api.client") == "protocol"
    assert ("openrouter_nb.api.errors", True) in _imports("openrouter_nb.api.client",
                                                          modules["openrouter_nb.api.client"])
    assert layer_of("openrouter_nb.notebook.magics") == "notebook"
    assert RANK[layer_of("openrouter_nb.session")] > RANK[layer_of("openrouter_nb.ledger")]
