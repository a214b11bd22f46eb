"""``python -m bench [NAME ...]``: run the benchmarks (all by default), write the results.

Each benchmark runs in a process of its own; results are merged into
``bench/results/latest.json`` and ``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(harness.BENCHMARKS)})")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        harness.child(args.child, args.out)
        return 0
    names = args.names or harness.BENCHMARKS
    unknown = [n for n in names if n not in harness.BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(harness.BENCHMARKS)}")
    started = time.monotonic()
    results, failed = {}, []
    for name in names:
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        try:
            results[name] = harness.run_isolated(name)
        except Exception as exc:  # report the others; say which one failed
            print(f"bench: {name} FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        shown = ", ".join(f"{k}={v:g}" for k, v in results[name]["metrics"].items())
        print(f"bench: {name} done in {results[name]['seconds']:.0f} s: {shown}",
              file=sys.stderr, flush=True)
    if results:
        harness.write_results(results, time.monotonic() - started)
        print(f"bench: wrote {harness.RESULTS / 'latest.json'} and latest.md", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
