"""The model picker widget: filters narrow the dropdown at once, pin sets the default model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.catalog import ModelInfo
from openrouter_nb.notebook.picker import ModelPicker, context_label, model_picker, option_label
from openrouter_nb.session import Session

GEMMA = "google/gemma-3-27b-it:free"


@pytest.fixture
def picker(session: Session) -> Iterator[ModelPicker]:
    widget = model_picker()
    yield widget
    widget.close()


def ids(picker: ModelPicker) -> list[str]:
    return [value for _label, value in picker.dropdown.options]


def test_starts_with_free_models_and_session_model(picker: ModelPicker, session: Session) -> None:
    free = session.catalog.filter(free=True)
    assert picker.session is session
    assert ids(picker) == [m.id for m in free]
    assert picker.selected == session.model == "openrouter/free"
    assert repr(picker) == f"ModelPicker({len(free)} free models, selected=openrouter/free)"


def test_vision_checkbox_changes_options_at_once(picker: ModelPicker, session: Session) -> None:
    before = ids(picker)
    picker.vision.value = True
    vision = [m.id for m in session.catalog.filter(free=True, vision=True)]
    assert ids(picker) == vision and ids(picker) != before
    assert picker.selected == "openrouter/free"  # still matches: kept
    picker.vision.value = False
    assert ids(picker) == before


def test_filters_combine_and_selection_moves(picker: ModelPicker, session: Session) -> None:
    picker.dropdown.value = "meta-llama/llama-3.3-70b-instruct:free"
    picker.structured.value = True
    picker.tools.value = True
    expected = [m.id for m in session.catalog.filter(free=True, tools=True, structured=True)]
    assert ids(picker) == expected
    assert "meta-llama/llama-3.3-70b-instruct:free" not in expected
    assert picker.selected == expected[0]  # the old choice no longer matches
    picker.min_context.value = 200_000
    narrower = [m.id for m in session.catalog.filter(free=True, tools=True, structured=True,
                                                     min_context=200_000)]
    assert ids(picker) == narrower and len(narrower) < len(expected)
    assert repr(picker) == (f"ModelPicker({len(narrower)} free models with tools, structured "
                            f"outputs, context ≥ 200000, selected={picker.selected})")


def test_no_match_disables_pin(picker: ModelPicker, session: Session) -> None:
    picker.min_context.value = 50_000_000
    assert ids(picker) == [] and picker.selected is None and picker.pin_button.disabled
    assert picker.status.value == "no free model matches these filters"
    assert picker.pin() is None and session.model == "openrouter/free"
    assert repr(picker) == "ModelPicker(0 free models with context ≥ 50000000, selected=None)"
    picker.min_context.value = 0
    assert ids(picker) and not picker.pin_button.disabled and picker.status.value == ""
    assert picker.selected == "openrouter/free"  # back to the choice before the filter


def test_pin_sets_session_model(picker: ModelPicker, session: Session) -> None:
    picker.dropdown.value = GEMMA
    picker.pin_button.click()
    assert session.model == GEMMA
    assert picker.status.value == f"default model: {GEMMA}"
    assert session.ask("hello").requested_model == GEMMA


def test_labels_show_context_and_paid_twin_price(picker: ModelPicker, session: Session) -> None:
    labels = dict((value, label) for label, value in picker.dropdown.options)
    gemma, twin = session.catalog.get(GEMMA), session.catalog.paid_twin(GEMMA)
    assert gemma is not None and twin is not None and twin.prompt_price and twin.completion_price
    assert labels[GEMMA] == (f"{GEMMA} · {context_label(gemma.context_length)} context · paid "
                             f"${twin.prompt_price * 1e6:.2f}/${twin.completion_price * 1e6:.2f} "
                             "per M tokens")
    assert labels["openrouter/free"].endswith(" context · router")


def test_label_helpers() -> None:
    assert [context_label(n) for n in (None, 0, 512, 32768, 131072, 1_048_576, 2_000_000)] == [
        "?", "?", "512", "33K", "131K", "1.05M", "2M"]
    model = ModelInfo(id="a/b:free", name="b", canonical_slug="a/b", context_length=8192,
                      prompt_price=0.0, completion_price=0.0, free=True, vision=False,
                      tools=False, structured=False)
    assert option_label(model, None) == "a/b:free · 8K context"


def test_picker_magic_displays_widget(session: Session) -> None:
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "openrouter_nb")
        with capture_output() as cap:
            result = shell.run_line_magic("openrouter", "picker --vision --min-context 100k")
        assert result is None and not cap.stderr
        (output,) = cap.outputs
        count = len(session.catalog.filter(free=True, vision=True, min_context=100_000))
        assert output.data["text/plain"] == (
            f"ModelPicker({count} free models with vision, context ≥ 100000, "
            "selected=openrouter/free)")
        assert "application/vnd.jupyter.widget-view+json" in output.data
    finally:
        InteractiveShell.clear_instance()
