"""The model picker: filter the free models by capability, pick one, pin it as the default.

:class:`ModelPicker` is a thin view over :meth:`Catalog.filter(free=True, ...)
<openrouter_nb.catalog.Catalog.filter>`: three checkboxes (vision, tools, structured outputs)
and a minimum context length narrow the dropdown at once; each option shows the model id, its
context length and, when the catalog knows one, the paid twin's price per million tokens.
"Pin as default" sets ``session.model``. The ``repr`` (the ``text/plain`` nbval compares)
holds the count, the active filters and the selection, nothing that changes between runs.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..api.errors import OpenRouterError

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import ModelInfo
    from ..session import Session

MAX_CONTEXT = 100_000_000
_LABEL = {"description_width": "90px"}
_TD = "padding:1px 8px;text-align:left;white-space:nowrap"


def context_label(tokens: int | None) -> str:
    """``131072`` → ``131K``, ``1048576`` → ``1M``; ``?`` when unknown."""
    if not tokens:
        return "?"
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.3g}M"
    return f"{round(tokens / 1000)}K" if tokens >= 1000 else str(tokens)


def option_label(model: ModelInfo, twin: ModelInfo | None) -> str:
    """``id · 131K context · paid $0.10/$0.20 per M tokens`` (in/out, when a twin is known)."""
    parts = [model.id, f"{context_label(model.context_length)} context"]
    if twin is not None and twin.prompt_price is not None and twin.completion_price is not None:
        parts.append(f"paid ${twin.prompt_price * 1e6:.2f}/${twin.completion_price * 1e6:.2f} "
                     "per M tokens")
    elif model.is_router:
        parts.append("router")
    return " · ".join(parts)


class ModelPicker(w.VBox):
    """Filters, a dropdown of matching free models and a "Pin as default" button."""

    def __init__(self, session: Session, *, vision: bool = False, tools: bool = False,
                 structured: bool = False, min_context: int = 0, **kwargs: Any) -> None:
        self.session = session
        self.vision = w.Checkbox(value=vision, description="vision", indent=False)
        self.tools = w.Checkbox(value=tools, description="tools", indent=False)
        self.structured = w.Checkbox(value=structured, description="structured outputs",
                                     indent=False)
        self.min_context = w.BoundedIntText(value=max(0, min_context), min=0, max=MAX_CONTEXT,
                                            step=1024, description="min context", style=_LABEL)
        self.dropdown = w.Dropdown(options=[], description="free model", style=_LABEL,
                                   layout=w.Layout(width="max-content"))
        self.pin_button = w.Button(description="Pin as default", button_style="primary")
        self.status = w.Label()
        super().__init__(children=[
            w.HBox([self.vision, self.tools, self.structured]),
            self.min_context,
            w.HBox([self.dropdown, self.pin_button]),
            self.status,
        ], **kwargs)
        self.models: list[ModelInfo] = []
        self.error: OpenRouterError | None = None
        self._last: str | None = None  # the selection to come back to when it matches again
        self._warning = False  # the status line is a warning that the next refill clears
        for control in (self.vision, self.tools, self.structured, self.min_context):
            control.observe(lambda _change: self.update_options(), names="value")
        self.pin_button.on_click(lambda _button: self.pin())
        self.update_options(prefer=session.model)

    # -- state ------------------------------------------------------------------------------------
    def filters(self) -> dict[str, Any]:
        """The active filters as ``Catalog.filter`` keywords (``None``: either way)."""
        return {"vision": self.vision.value or None, "tools": self.tools.value or None,
                "structured": self.structured.value or None,
                "min_context": self.min_context.value or None}

    @property
    def selected(self) -> str | None:
        value: str | None = self.dropdown.value
        return value

    def update_options(self, prefer: str | None = None) -> None:
        """Refill the dropdown from the catalog; keep the selection when it still matches."""
        keep = prefer or self.dropdown.value or self._last
        catalog = self.session.catalog
        try:
            self.models = catalog.filter(free=True, **self.filters())
            options = [(option_label(m, catalog.paid_twin(m.id)), m.id) for m in self.models]
            self.error = None
        except OpenRouterError as error:
            self.models, options, self.error = [], [], error
        ids = [model_id for _label, model_id in options]
        self.dropdown.options = options
        self.dropdown.value = keep if keep in ids else (ids[0] if ids else None)
        self._last = keep if keep in ids else self.dropdown.value or keep
        self.pin_button.disabled = not ids
        if self.error is not None:
            self._warn(f"catalog unavailable ({self.error.kind}): {self.error.message}")
        elif not ids:
            self._warn("no free model matches these filters")
        elif self._warning:
            self.status.value, self._warning = "", False

    def _warn(self, text: str) -> None:
        self.status.value, self._warning = text, True

    def pin(self) -> str | None:
        """Make the selected model the session's default (``session.model``)."""
        model: str | None = self.dropdown.value
        if model is None:
            self._warn("nothing to pin: no free model matches these filters")
            return None
        self.session.model = model
        self.status.value, self._warning = f"default model: {model}", False
        return model

    # -- text/plain -------------------------------------------------------------------------------
    def describe_filters(self) -> str:
        active = [name for name, box in (("vision", self.vision), ("tools", self.tools),
                                         ("structured outputs", self.structured)) if box.value]
        if self.min_context.value:
            active.append(f"context ≥ {self.min_context.value}")
        return f" with {', '.join(active)}" if active else ""

    def __repr__(self) -> str:
        count = len(self.models)
        return (f"ModelPicker({count} free model{'s' if count != 1 else ''}"
                f"{self.describe_filters()}, selected={self.dropdown.value})")

    def html(self) -> str:
        """The matching models as a table, with how to pin one: where widgets do not render."""
        if not self.models:
            return f"<p>{html.escape(self.status.value or 'no free model matches')}</p>"
        rows = "".join(
            f"<tr><td style='{_TD}'><code>{html.escape(m.id)}</code>"
            f"{' (selected)' if m.id == self.selected else ''}</td>"
            f"<td style='{_TD};text-align:right'>{context_label(m.context_length)}</td></tr>"
            for m in self.models)
        return (f"<table style='border-collapse:collapse'><tr><th style='{_TD}'>free model"
                f"{html.escape(self.describe_filters())}</th><th style='{_TD}'>context</th></tr>"
                f"{rows}</table><p style='color:gray'>Widgets do not render here: pin a model "
                "with <code>-m MODEL</code> on a <code>%%openrouter</code> cell, or "
                "<code>orn.get_session().model = 'MODEL'</code>.</p>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = repr(self)  # ipywidgets cuts reprs at 110 characters
            data["text/html"] = self.html()
        return data


def model_picker(session: Session | None = None, **filters: Any) -> ModelPicker:
    """A picker over the free models of ``session`` (default: the default session).

    ``filters``: ``vision``, ``tools``, ``structured`` (bools), ``min_context`` (tokens).
    """
    if session is None:
        from ..session import get_session

        session = get_session()
    return ModelPicker(session, **filters)
