"""``python -m agentdesk.llmsim --host 127.0.0.1 --port 8765 [--latency-scale 1.0]``."""

from __future__ import annotations

import argparse

import uvicorn

from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m agentdesk.llmsim",
        description="Serve the OpenAI-compatible LLM simulator.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=None,
        help="multiplier for each tier's base latency; 0 = instant "
        "(default: $LLMSIM_LATENCY_SCALE or 1.0)",
    )
    parser.add_argument(
        "--fault-timeout",
        type=float,
        default=None,
        help="seconds a 'timeout' fault stalls (default: $LLMSIM_FAULT_TIMEOUT_SECONDS or 30)",
    )
    parser.add_argument(
        "--small-confident-error-rate",
        type=float,
        default=None,
        help="share of hard tasks sim-small is confidently wrong on "
        "(default: $LLMSIM_SMALL_CONFIDENT_ERROR_RATE or 0.10)",
    )
    args = parser.parse_args(argv)
    app = create_app(latency_scale=args.latency_scale, fault_timeout_s=args.fault_timeout,
                     small_confident_error_rate=args.small_confident_error_rate)
    print(f"llmsim serving http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
