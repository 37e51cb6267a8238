"""``python -m openrouter_nb.sandbox``: serve the sandbox on loopback until Ctrl-C.

``--speed realistic`` streams at each model's speed (its catalog latency and tokens/s);
``--speed instant`` (the default) answers at once. ``--help`` lists the injectable faults.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from .app import Sandbox, sandbox_key
from .faults import FAULTS
from .pacing import INSTANT, SPEEDS
from .server import SandboxServer

__all__ = ["main"]


_EPILOG = """\
speed: 'instant' answers at once (deterministic, for tests). 'realistic' waits each serving
endpoint's first-token latency, then streams at its tokens/s (the figures of
/models/ID/endpoints, kept within 0.3-1.5 s and >= 30 tokens/s), reasoning included.
--latency-ms and --model-latency override it, and a request may set its own with the
header X-Sandbox-Speed or X-Sandbox-Latency-Ms.

faults (request header X-Sandbox-Fault: NAME[,NAME...], one per model tried):
""" + textwrap.fill(", ".join(FAULTS), 90, initial_indent="  ", subsequent_indent="  ")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m openrouter_nb.sandbox",
                                description="Offline OpenRouter emulator on loopback.",
                                epilog=_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--rpm", type=int, default=20, help="free-model requests per window")
    p.add_argument("--rpd", type=int, default=None,
                   help="free-model requests per UTC day (default 50, or 1000 with --credits 10)")
    p.add_argument("--credits", type=float, default=0.0, help="credits purchased (>=10: 1000/day)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed", choices=SPEEDS, default=INSTANT,
                   help="instant (default) or realistic: per-model first-token delay and "
                        "tokens/s, streamed chunk by chunk")
    p.add_argument("--latency-ms", type=int, default=None,
                   help="fixed latency per answer (overrides --speed)")
    p.add_argument("--model-latency", action="store_true",
                   help="use each model's typical latency per answer (overrides --speed)")
    p.add_argument("--window-s", type=float, default=60.0, help="per-minute window length")
    p.add_argument("--natural-faults", action="store_true",
                   help="models fail now and then according to their reliability")
    p.add_argument("--key-cache-s", type=float, default=0.0,
                   help="cache /key free_model_daily_requests this long (real: ~60 s; default off)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    sandbox = Sandbox(seed=args.seed, rpm=args.rpm, rpd=args.rpd, credits=args.credits,
                      window_s=args.window_s, latency_ms=args.latency_ms,
                      model_latency=args.model_latency, natural_faults=args.natural_faults,
                      key_cache_s=args.key_cache_s, speed=args.speed)
    server = SandboxServer(sandbox, host=args.host, port=args.port).start()
    print(f"openrouter_nb sandbox: OPENROUTER_BASE_URL={server.base_url} "
          f"OPENROUTER_API_KEY={sandbox_key()}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("sandbox stopped", file=sys.stderr)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
