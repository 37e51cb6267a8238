"""Usage charts from the ledger: ``orn.usage()``, ``%openrouter stats`` and ``orn.pool_drift()``.

One matplotlib figure each, shown as a static PNG (``Usage._repr_png_``), so it renders the
same in JupyterLab, Notebook 7, VS Code, Colab, GitHub and under nbval; the DataFrames behind
every panel are returned too (``.frames``). Fonts, sizes and dpi are fixed and the PNG carries
no date or software metadata, so the same ledger and clock give the same bytes.

The figures are built with ``matplotlib.figure.Figure`` (not ``pyplot``): nothing is drawn
twice by an inline backend, and no GUI window opens in a script. matplotlib is imported only
here, on first use (it is in the ``notebook`` and ``test`` extras, not a core dependency).
"""

from __future__ import annotations

import io
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from .quota import FREE_RPM, is_free_model, utc_midnight_before

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from .session import Session

__all__ = ["LEDGER_COLUMNS", "Usage", "drift_frames", "pool_drift", "usage", "usage_frames"]

ROUTER = "openrouter/free"
LEDGER_COLUMNS = ["epoch", "status", "error_kind", "http_status", "requested_model",
                  "served_model", "latency_s", "ttft_s", "prompt_tokens", "completion_tokens",
                  "reasoning_tokens", "validated", "mode", "account"]
STYLE = {"font.family": "DejaVu Sans", "font.size": 8.0, "axes.titlesize": 9.0,
         "figure.dpi": 100, "savefig.dpi": 100, "svg.hashsalt": "openrouter-nb"}
DPI = 100


@dataclass
class Usage:
    """A figure and the DataFrames behind it. Shown as a PNG in a notebook."""

    title: str
    frames: dict[str, pd.DataFrame]
    figure: Figure = field(repr=False)

    def __post_init__(self) -> None:
        # constrained layout settles on the first render: render once so every PNG is the same
        self.png()

    def png(self) -> bytes:
        """The figure as PNG bytes (fixed dpi, no metadata: the same data, the same bytes)."""
        buffer = io.BytesIO()
        with _style():
            self.figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {len(frame)} rows" for name, frame in self.frames.items())
        titles = "; ".join(ax.get_title() for ax in self.figure.axes if ax.get_title())
        return f"{self.title} ({sizes})\npanels: {titles}"


# -- the data -----------------------------------------------------------------------------------
def _sent(rows: pd.DataFrame) -> pd.Series:
    """Rows that reached OpenRouter (as ``Ledger.count_attempts`` counts them)."""
    status = rows["http_status"]
    reached = status.notna() & ~status.isin([400, 401])
    return (reached | (rows["status"] == "ok")) & (rows["mode"].fillna("") != "replay")


def _rows(frame: pd.DataFrame, since: float, until: float) -> pd.DataFrame:
    return frame[(frame["epoch"] >= since) & (frame["epoch"] <= until)].copy()


def usage_frames(ledger_rows: pd.DataFrame, *, now: float, days: int = 1,
                 day_limit: int = 50, minute_limit: int = FREE_RPM) -> dict[str, pd.DataFrame]:
    """The frames behind :func:`usage`, from ledger rows (``LEDGER_COLUMNS``) at ``now``.

    - ``hourly``: today's (UTC) free requests per hour, sent and cached, and the running total
      against ``day_limit``;
    - ``minutes``: today's busiest minutes (free requests in each clock minute), against
      ``minute_limit``;
    - ``latency``: per model that answered in the last ``days`` UTC days (1: since midnight):
      answers, median and p95 latency and time to first token (seconds);
    - ``outcomes``: attempts of the same days by outcome (``ok``, ``cached`` or the
      error kind);
    - ``tokens``: prompt, completion and reasoning tokens per model over the same days.
    """
    import pandas as pd

    midnight = utc_midnight_before(now)
    today = _rows(ledger_rows, midnight, now)
    free = today[today["requested_model"].map(is_free_model)]
    sent = free[_sent(free)]
    cached = free[free["status"] == "cached"]
    hours = pd.RangeIndex(24, name="hour")

    def hour_of(rows: pd.DataFrame) -> pd.Series:
        return ((rows["epoch"] - midnight) // 3600).astype(int)

    hourly = pd.DataFrame({
        "sent": sent.groupby(hour_of(sent)).size().reindex(hours, fill_value=0),
        "cached": cached.groupby(hour_of(cached)).size().reindex(hours, fill_value=0),
    }).astype("int64")
    hourly["total"] = hourly["sent"].cumsum()
    hourly["day_limit"] = day_limit
    hourly = hourly.reset_index()
    minute = ((sent["epoch"] - midnight) // 60).astype(int)
    per_minute = sent.groupby(minute).size()
    minutes = pd.DataFrame({
        "minute": [f"{m // 60:02d}:{m % 60:02d}" for m in per_minute.index],
        "requests": per_minute.to_numpy(dtype="int64"),
    })
    minutes["minute_limit"] = minute_limit
    window = _rows(ledger_rows, midnight - (days - 1) * 86400.0, now)
    return {"hourly": hourly, "minutes": minutes, "latency": _latency(window),
            "outcomes": _outcomes(window), "tokens": _tokens(window)}


def _latency(rows: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    ok = rows[rows["status"] == "ok"].copy()
    ok["model"] = ok["served_model"].fillna(ok["requested_model"])
    out = []
    for model, group in sorted(ok.groupby("model"), key=lambda item: str(item[0])):
        latency, ttft = group["latency_s"].dropna(), group["ttft_s"].dropna()
        out.append({"model": model, "answers": len(group),
                    "latency_median_s": _q(latency, 0.5), "latency_p95_s": _q(latency, 0.95),
                    "ttft_median_s": _q(ttft, 0.5), "ttft_p95_s": _q(ttft, 0.95)})
    columns = ["model", "answers", "latency_median_s", "latency_p95_s", "ttft_median_s",
               "ttft_p95_s"]
    return pd.DataFrame(out, columns=columns)


def _q(values: pd.Series, q: float) -> float:
    return round(float(values.quantile(q)), 3) if len(values) else float("nan")


def _outcomes(rows: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    kind = rows["error_kind"].where(rows["status"] != "ok", "ok")
    kind = kind.where(rows["status"] != "cached", "cached").fillna(rows["status"])
    counts = kind.value_counts()
    frame = pd.DataFrame({"outcome": counts.index.astype(str),
                          "attempts": counts.to_numpy(dtype="int64")})
    return frame.sort_values(["attempts", "outcome"], ascending=[False, True],
                             ignore_index=True)


def _tokens(rows: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    sent = rows[rows["status"] != "cached"].copy()  # cached rows repeat tokens never spent
    sent["model"] = sent["served_model"].fillna(sent["requested_model"])
    names = ["prompt_tokens", "completion_tokens", "reasoning_tokens"]
    for name in names:
        sent[name] = pd.to_numeric(sent[name], errors="coerce").fillna(0).astype("int64")
    frame = sent.groupby("model", sort=True)[names].sum().reset_index()
    frame = frame[(frame[names] > 0).any(axis=1)].reset_index(drop=True)
    return frame.astype({name: "int64" for name in names})


def drift_frames(ledger_rows: pd.DataFrame, *, now: float, days: int = 7
                 ) -> dict[str, pd.DataFrame]:
    """The frames behind :func:`pool_drift`: the free router's answered rows of the last
    ``days`` UTC days, by day and served model (``served``: answers, share of the day,
    median latency, schema-validity rate where a schema was asked), and ``daily`` (answers
    and distinct models per day)."""
    import pandas as pd

    start = utc_midnight_before(now) - (days - 1) * 86400.0
    rows = _rows(ledger_rows, start, now)
    routed = rows[(rows["requested_model"] == ROUTER) & (rows["status"] == "ok")].copy()
    routed["day"] = [datetime.fromtimestamp(e, tz=timezone.utc).strftime("%Y-%m-%d")
                     for e in routed["epoch"]]
    routed["model"] = routed["served_model"].fillna("?")
    out = []
    for (day, model), group in sorted(routed.groupby(["day", "model"]), key=lambda i: i[0]):
        checked = group["validated"].dropna()
        out.append({"day": day, "model": model, "answers": len(group),
                    "share": round(len(group) / int((routed["day"] == day).sum()), 3),
                    "latency_median_s": _q(group["latency_s"].dropna(), 0.5),
                    "valid_rate": round(float(checked.astype(float).mean()), 3)
                    if len(checked) else float("nan")})
    served = pd.DataFrame(out, columns=["day", "model", "answers", "share",
                                        "latency_median_s", "valid_rate"])
    daily = (served.groupby("day", sort=True)
             .agg(answers=("answers", "sum"), models=("model", "nunique")).reset_index())
    return {"served": served, "daily": daily.astype({"answers": "int64", "models": "int64"})}


# -- the figures --------------------------------------------------------------------------------
def _style() -> AbstractContextManager[Any]:
    """Fixed fonts and sizes for our figures only (the user's rcParams are left alone)."""
    import matplotlib

    context: AbstractContextManager[Any] = matplotlib.rc_context(cast(Any, STYLE))
    return context


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def usage_figure(frames: dict[str, pd.DataFrame], *, day: str) -> Figure:
    """Five panels: the day by hour, the busiest minutes, latency, outcomes, tokens."""
    with _style():
        return _usage_panels(frames, day)


def _usage_panels(frames: dict[str, pd.DataFrame], day: str) -> Figure:
    figure = _figure((11.0, 6.4))
    grid = figure.add_gridspec(2, 3)
    hourly, minutes = frames["hourly"], frames["minutes"]
    ax = figure.add_subplot(grid[0, 0])
    ax.bar(hourly["hour"], hourly["sent"], color="#4c72b0", label="sent")
    ax.bar(hourly["hour"], hourly["cached"], bottom=hourly["sent"], color="#a6bddb",
           label="cached (free)")
    ax.plot(hourly["hour"], hourly["total"], color="#333333", label="running total")
    ax.axhline(int(hourly["day_limit"].iloc[0]), color="#c44e52", linestyle="--",
               label="daily limit")
    figure.suptitle(f"Usage on {day} (UTC)", fontsize=10)
    ax.set(title="Free requests today by hour", xlabel="hour (UTC)",
           ylabel="requests", xlim=(-0.5, 23.5))
    ax.legend(loc="upper left", fontsize=7)
    ax = figure.add_subplot(grid[0, 1])
    limit = int(minutes["minute_limit"].iloc[0]) if len(minutes) else FREE_RPM
    busiest = minutes.nlargest(24, "requests").sort_values("minute")
    ax.bar(busiest["minute"], busiest["requests"], color="#55a868")
    ax.axhline(limit, color="#c44e52", linestyle="--", label=f"{limit}/min limit")
    ax.set(title="Busiest minutes today", xlabel="minute (UTC)", ylabel="requests",
           ylim=(0, max(limit, int(busiest["requests"].max()) if len(busiest) else 0) * 1.15))
    ax.tick_params(axis="x", labelrotation=90, labelsize=6)
    ax.legend(loc="upper right", fontsize=7)
    _latency_panel(figure.add_subplot(grid[0, 2]), frames["latency"])
    _barh(figure.add_subplot(grid[1, 0]), frames["outcomes"], "outcome", ["attempts"],
          "Outcomes by kind", "attempts")
    tokens = frames["tokens"].assign(  # reasoning tokens are part of the completion tokens
        answer_tokens=frames["tokens"]["completion_tokens"] - frames["tokens"]["reasoning_tokens"])
    _barh(figure.add_subplot(grid[1, 1:]), tokens, "model",
          ["prompt_tokens", "answer_tokens", "reasoning_tokens"], "Tokens by model", "tokens")
    return figure


def _latency_panel(ax: Any, latency: pd.DataFrame) -> None:
    names = [_short(m) for m in latency["model"]]
    rows = range(len(latency))
    ax.barh([r + 0.2 for r in rows], latency["latency_median_s"], height=0.4,
            color="#4c72b0", label="latency (median)")
    ax.barh([r - 0.2 for r in rows], latency["ttft_median_s"].fillna(0), height=0.4,
            color="#dd8452", label="first token (median)")
    ax.scatter(latency["latency_p95_s"], [r + 0.2 for r in rows], marker="|", s=80,
               color="#222222", label="p95", zorder=3)
    ax.scatter(latency["ttft_p95_s"], [r - 0.2 for r in rows], marker="|", s=80,
               color="#222222", zorder=3)
    ax.set_yticks(list(rows), names)
    ax.set(title="Latency and first token per model", xlabel="seconds")
    ax.legend(loc="lower right", fontsize=7)


def _barh(ax: Any, frame: pd.DataFrame, label: str, values: list[str], title: str,
          xlabel: str) -> None:
    left = [0] * len(frame)
    colors = ["#4c72b0", "#55a868", "#8172b2"]
    for name, color in zip(values, colors, strict=False):
        ax.barh([_short(v) for v in frame[label]], frame[name], left=left, color=color,
                label=name.replace("_", " "))
        left = [a + int(b) for a, b in zip(left, frame[name], strict=True)]
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    if len(values) > 1:
        ax.legend(loc="lower right", fontsize=7)


def _short(model: Any) -> str:
    text = str(model)
    return text if len(text) <= 34 else text[:33] + "…"


def drift_figure(frames: dict[str, pd.DataFrame], *, days: int) -> Figure:
    """Two panels: each day's answers stacked by served model; latency and validity."""
    with _style():
        return _drift_panels(frames, days)


def _drift_panels(frames: dict[str, pd.DataFrame], days: int) -> Figure:
    figure = _figure((11.0, 3.8))
    served = frames["served"]
    table = served.pivot_table(index="day", columns="model", values="answers",
                               aggfunc="sum", fill_value=0).sort_index()
    ax = figure.add_subplot(1, 2, 1)
    bottom = [0] * len(table)
    for model in table.columns:
        ax.bar(list(table.index), table[model], bottom=bottom, label=_short(model))
        bottom = [a + int(b) for a, b in zip(bottom, table[model], strict=True)]
    ax.set(title=f"Models the free router served, last {days} days", xlabel="day (UTC)",
           ylabel="answers")
    if len(table.columns):
        ax.legend(loc="upper left", fontsize=6)
    ax = figure.add_subplot(1, 2, 2)
    per_model = served.groupby("model", sort=True).agg(
        latency=("latency_median_s", "median"), valid=("valid_rate", "mean")).reset_index()
    ax.barh([_short(m) for m in per_model["model"]], per_model["latency"], color="#4c72b0")
    for row, valid in enumerate(per_model["valid"]):
        if valid == valid:  # not NaN
            ax.text(0, row, f" {valid:.0%} valid", va="center", fontsize=7, color="white")
    ax.invert_yaxis()
    ax.set(title="Median latency by served model (schema validity)", xlabel="seconds")
    return figure


# -- from a session -------------------------------------------------------------------------------
def _ledger_rows(session: Session) -> pd.DataFrame:
    rows = session.ledger.dataframe(columns=LEDGER_COLUMNS)
    return rows[rows["account"] == session.account]


def usage(session: Session, *, days: int = 1) -> Usage:
    """:func:`usage_frames` and :func:`usage_figure` for ``session``'s account."""
    _check_days(days)
    state = session.quota_state()
    frames = usage_frames(_ledger_rows(session), now=state.now, days=days,
                          day_limit=state.day_limit, minute_limit=state.minute_limit)
    day = datetime.fromtimestamp(state.now, tz=timezone.utc).strftime("%Y-%m-%d")
    label = "today" if days == 1 else f"last {days} days"
    return Usage(f"Usage ({label})", frames, usage_figure(frames, day=day))


def pool_drift(session: Session, *, days: int = 7) -> Usage:
    """:func:`drift_frames` and :func:`drift_figure` for ``session``'s account."""
    _check_days(days)
    frames = drift_frames(_ledger_rows(session), now=session.clock(), days=days)
    return Usage(f"Free router pool (last {days} days)", frames,
                 drift_figure(frames, days=days))


def _check_days(days: Any) -> None:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        raise ValueError(f"days must be a whole number from 1 to 366, not {days!r:.40}.")


# -- a class on one key ----------------------------------------------------------------------------
def class_figure(people: pd.DataFrame, hourly: pd.DataFrame, *, day: str) -> Figure:
    """Two panels: each participant's requests today (answered and failed), and the class's
    requests by hour against the key's daily limit."""
    with _style():
        figure = _figure((11.0, 3.8))
        ax = figure.add_subplot(1, 2, 1)
        names = [str(name) for name in people["person"]]
        ax.barh(names, people["answered"], color="#4c72b0", label="answered")
        ax.barh(names, people["failed"], left=people["answered"], color="#dd8452",
                label="failed")
        ax.invert_yaxis()
        ax.set(title=f"Requests per participant, {day} (UTC)", xlabel="requests")
        if len(names):
            ax.legend(loc="lower right", fontsize=7)
        ax = figure.add_subplot(1, 2, 2)
        ax.bar(hourly["hour"], hourly["sent"], color="#4c72b0", label="sent")
        ax.set(title="The class by hour (UTC)", xlabel="hour", ylabel="requests")
        return figure


def class_usage(session: Session) -> Usage:
    """The class's charts (instructors): per participant today, and the key's day by hour."""
    people = session.class_frame()
    state = session.quota_state()
    frames = usage_frames(_ledger_rows(session), now=state.now, days=1,
                          day_limit=state.day_limit, minute_limit=state.minute_limit)
    day = datetime.fromtimestamp(state.now, tz=timezone.utc).strftime("%Y-%m-%d")
    return Usage("Class usage (today)", {"people": people, "hourly": frames["hourly"]},
                 class_figure(people, frames["hourly"], day=day))
