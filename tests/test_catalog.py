"""The model catalog: free detection, capability filters, cache, refresh diff, suggestions.

The fixture follows the shape of real ``/models`` entries (as recorded by public projects):
prices are strings per token, capabilities live in ``supported_parameters`` and
``architecture.input_modalities``, free variants share ``canonical_slug`` with a paid twin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import openrouter_nb as orn
from openrouter_nb.catalog import Catalog, ModelInfo, is_free_entry
from openrouter_nb.session import Session, set_session

from .conftest import FakeClock


def entry(model_id: str, prompt: str = "0", completion: str = "0", *, slug: str | None = None,
          image: bool = False, params: tuple[str, ...] = ("max_tokens", "temperature"),
          context: int = 131072) -> dict[str, Any]:
    return {
        "id": model_id, "canonical_slug": slug or model_id.split(":")[0] + "-20250101",
        "hugging_face_id": "", "name": model_id, "created": 1747930371, "description": "…",
        "context_length": context,
        "architecture": {"modality": "text+image->text" if image else "text->text",
                         "input_modalities": ["image", "text"] if image else ["text"],
                         "output_modalities": ["text"], "tokenizer": "Other",
                         "instruct_type": None},
        "pricing": {"prompt": prompt, "completion": completion, "web_search": "0"},
        "top_provider": {"context_length": context, "max_completion_tokens": 8192,
                         "is_moderated": False},
        "per_request_limits": None, "supported_parameters": list(params),
        "default_parameters": {"temperature": None}, "supported_voices": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }


CATALOG = [
    entry("openai/gpt-4o", "0.0000025", "0.00001", image=True,
          params=("response_format", "structured_outputs", "tools")),
    entry("acme/vision-7b:free", image=True, slug="acme/vision-7b-20250101", context=32768),
    entry("acme/vision-7b", "0.0000001", "0.0000002", image=True, slug="acme/vision-7b-20250101"),
    entry("acme/tool-70b:free", params=("tools", "tool_choice", "response_format")),
    entry("openrouter/free", context=200000),
    entry("openrouter/auto", "-1", "-1"),
    entry("acme/zero-priced", "0", "0"),
    entry("acme/half-free", "0", "0.000001"),
]


@pytest.mark.parametrize(("model_id", "prompt", "completion", "free"), [
    ("a/b:free", "0", "0", True),
    ("openrouter/free", "0", "0", True),
    ("a/zero", "0", "0", True),          # zero-priced without :free still costs nothing
    ("a/zero-str", "0.0", "0.000", True),
    ("openrouter/auto", "-1", "-1", False),  # routers priced -1 are not free
    ("a/half", "0", "0.000001", False),
    ("a/paid", "0.000001", "0.000002", False),
    ("a/missing", None, None, False),
])
def test_free_detection(model_id: str, prompt: str | None, completion: str | None,
                        free: bool) -> None:
    assert is_free_entry({"id": model_id, "pricing": {"prompt": prompt,
                                                      "completion": completion}}) is free


def test_capabilities_from_parameters_and_modalities() -> None:
    info = ModelInfo.from_json(CATALOG[0])
    assert (info.vision, info.tools, info.structured, info.free) == (True, True, True, False)
    tool = ModelInfo.from_json(CATALOG[3])
    assert (tool.vision, tool.tools, tool.structured, tool.free) == (False, True, True, True)


def make_catalog(tmp_path: Path, data: list[dict[str, Any]], clock: FakeClock
                 ) -> tuple[Catalog, list[int]]:
    calls: list[int] = []

    def fetch() -> list[dict[str, Any]]:
        calls.append(1)
        return data

    return Catalog(tmp_path / "models.json", fetch, clock=clock, max_age_s=3600), calls


def test_filters(tmp_path: Path, clock: FakeClock) -> None:
    catalog, _ = make_catalog(tmp_path, CATALOG, clock)
    ids = lambda models: [m.id for m in models]  # noqa: E731
    assert ids(catalog.filter(free=True)) == ["acme/vision-7b:free", "acme/tool-70b:free",
                                              "openrouter/free", "acme/zero-priced"]
    assert ids(catalog.filter(free=True, vision=True)) == ["acme/vision-7b:free"]
    assert ids(catalog.filter(free=True, tools=True, structured=True)) == ["acme/tool-70b:free"]
    assert ids(catalog.filter(free=True, min_context=100000)) == [
        "acme/tool-70b:free", "openrouter/free", "acme/zero-priced"]


def test_paid_twin_and_dataframe(tmp_path: Path, clock: FakeClock) -> None:
    catalog, _ = make_catalog(tmp_path, CATALOG, clock)
    assert catalog.paid_twin("acme/vision-7b:free").id == "acme/vision-7b"
    frame = catalog.dataframe(free=True, vision=True)
    assert frame.loc[0, "paid_twin"] == "acme/vision-7b"
    assert frame.loc[0, "paid_prompt_per_m"] == pytest.approx(0.1)


def test_cache_is_used_until_stale(tmp_path: Path, clock: FakeClock) -> None:
    catalog, calls = make_catalog(tmp_path, CATALOG, clock)
    catalog.models()
    again, calls_again = make_catalog(tmp_path, CATALOG, clock)
    again.models()
    assert calls == [1] and calls_again == []  # read from the file
    assert json.loads((tmp_path / "models.json").read_text())["fetched_at"] == clock.now
    clock.now += 3601
    stale, calls_stale = make_catalog(tmp_path, CATALOG, clock)
    stale.models()
    assert calls_stale == [1]


def test_refresh_reports_free_models_that_came_and_went(tmp_path: Path, clock: FakeClock) -> None:
    catalog, _ = make_catalog(tmp_path, CATALOG, clock)
    catalog.refresh()
    changed = [e for e in CATALOG if e["id"] != "acme/tool-70b:free"] + [entry("new/model:free")]
    later, _ = make_catalog(tmp_path, changed, clock)
    diff = later.refresh()
    assert diff.appeared == ("new/model:free",) and diff.disappeared == ("acme/tool-70b:free",)
    assert "new/model:free" in str(diff) and "acme/tool-70b:free" in str(diff)


def test_public_models_function_uses_the_sandbox_catalog(tmp_path: Path) -> None:
    old = set_session(Session(sandbox=True, home=tmp_path))
    try:
        frame = orn.models(vision=True)
        assert len(frame) >= 2 and frame["vision"].all() and frame["free"].all()
        assert {"id", "context_length", "paid_twin", "paid_prompt_per_m"} <= set(frame.columns)
        structured = orn.models(structured=True, min_context=100_000)
        assert (structured["context_length"] >= 100_000).all()
    finally:
        set_session(old)


def test_unavailable_model_suggests_capable_free_alternatives(
        make_session: Callable[..., Session]) -> None:
    session = make_session()
    session.sandbox.queue_fault("free_variant_ended_404")
    with pytest.raises(orn.ModelUnavailableError) as info:
        session.ask("describe this", "google/gemma-3-27b-it:free")  # a vision model
    suggested = info.value.message.split("Free alternatives: ")[1].rstrip(".").split(", ")
    assert 1 <= len(suggested) <= 3
    vision_ids = {m.id for m in session.catalog.filter(free=True, vision=True)}
    assert set(suggested) <= vision_ids and "google/gemma-3-27b-it:free" not in suggested
