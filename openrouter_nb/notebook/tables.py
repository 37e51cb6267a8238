"""DataFrames shown as tables whose cells never wrap (model ids stay on one line).

:func:`nowrap` returns the same rows and columns as a DataFrame whose HTML table sets
``white-space:nowrap`` (a wide table scrolls sideways instead of breaking
``google/gemma-3-27b-it:free`` over three lines); selecting from it gives plain DataFrames.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

_TABLE = '<table border="1" class="dataframe">'


class NoWrapFrame(pd.DataFrame):
    """A DataFrame whose ``_repr_html_`` keeps every cell on one line."""

    @property
    def _constructor(self) -> Any:
        return pd.DataFrame  # a selection or a computation is an ordinary DataFrame again

    def _repr_html_(self) -> str | None:
        page = super()._repr_html_()
        if not isinstance(page, str):
            return None
        return page.replace(_TABLE, _TABLE[:-1] + ' style="white-space:nowrap">', 1)


def nowrap(frame: pd.DataFrame) -> pd.DataFrame:
    return NoWrapFrame(frame)
