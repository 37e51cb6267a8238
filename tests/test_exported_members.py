"""The public surface promised by DESIGN.md, and the promise that importing it is cheap."""

from __future__ import annotations

import subprocess
import sys

import openrouter_nb as orn
from openrouter_nb.api.errors import ERROR_KINDS

CONTRACT = {"ask", "log", "models", "compare", "batch", "quota_meter", "Session",
            "OpenRouterError", "estimate_cost", "load_ipython_extension"}
DESIGN_KINDS = {"rate_limit_minute", "rate_limit_day", "upstream_rate_limit", "auth", "credits",
                "moderation", "model_unavailable", "bad_request", "provider_error", "timeout",
                "network", "midstream_error", "invalid_output", "budget", "blocked_sensitive"}


def test_all_is_sorted_and_resolvable() -> None:
    assert orn.__all__ == sorted(orn.__all__)
    for name in orn.__all__:
        assert getattr(orn, name) is not None, name


def test_contract_names_are_public() -> None:
    assert CONTRACT <= set(orn.__all__)


def test_every_error_has_a_design_kind() -> None:
    assert DESIGN_KINDS <= set(ERROR_KINDS)
    for name in orn.__all__:
        value = getattr(orn, name)
        if isinstance(value, type) and issubclass(value, orn.OpenRouterError):
            assert value is orn.OpenRouterError or value.kind in ERROR_KINDS or value in (
                orn.RateLimitError,)


def test_import_loads_no_heavy_module() -> None:
    code = ("import sys, openrouter_nb; "
            "print(sorted(m for m in ('httpx', 'pandas', 'ipywidgets', 'IPython') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_submodule_shadows_a_public_name() -> None:
    """Importing ``openrouter_nb.X`` sets the package attribute X to the module: a submodule
    named like a public function (``batch``, ``compare``…) would replace that function."""
    import importlib.util

    for name in orn.__all__:
        assert importlib.util.find_spec(f"openrouter_nb.{name}") is None, name
