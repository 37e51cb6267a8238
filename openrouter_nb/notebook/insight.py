"""``%openrouter cache on|off`` and ``%openrouter stats [--days N]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..charts import Usage

CACHE_USAGE = "usage: %openrouter cache [on|off]"
STATS_USAGE = "usage: %openrouter stats [--days N]   (N: 1 to 366, default 1)"


def cmd_cache(args: list[str]) -> None:
    """``cache on|off``: answer identical requests from the ledger (nothing sent)."""
    from ..session import get_session

    session = get_session()
    choice = args[0].lower() if args else ""
    if choice not in ("", "on", "off"):
        print(f"%openrouter cache: use 'on' or 'off', not {args[0]!r}. {CACHE_USAGE}")
        return
    if choice:
        session.config = session.config.derive(cache=choice == "on")
    on = session.config.call.cache
    if not on:
        print("cache: off (every request is sent; turn on with %openrouter cache on)")
        return
    print("cache: on — an identical request (model, messages, options) is answered from the "
          "ledger: nothing is sent, no quota is used, the footer says 'cached from HH:MM'. "
          "--no-cache sends one cell anyway.")
    if session.model == "openrouter/free":
        print("Note: the default model is the free router (openrouter/free). A cached answer "
              "repeats the model the router picked the first time; sent again, the router "
              "may pick another. Pin a model (-m vendor/model:free) to compare like with like.")


def cmd_stats(args: list[str]) -> Usage | None:
    """``stats [--days N]``: the usage charts (see :func:`openrouter_nb.usage`)."""
    from ..charts import usage
    from ..session import get_session

    days = 1
    if args:
        if args[0] != "--days" or len(args) != 2 or not args[1].isdigit():
            print(STATS_USAGE)
            return None
        days = int(args[1])
    try:
        return usage(get_session(), days=days)
    except ValueError as exc:
        print(f"%openrouter stats: {exc} {STATS_USAGE}")
        return None
    except ImportError:
        print("%openrouter stats needs matplotlib: pip install \"openrouter-nb[notebook]\".")
        return None
