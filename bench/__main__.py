"""``python -m bench``: run every benchmark (or ``--only`` some) and print one report.

Owns only the selection and the shared output; each bench lives in its own module and also runs alone
(``python -m bench.delivery``, ``python -m bench.startup``, ``python -m bench.logstream``). Every bench
starts its own ``nats-server``.
"""

from __future__ import annotations

import argparse

from bench import delivery, logstream, startup
from bench.report import BenchResult, add_common_args, emit

BENCHES = ("delivery", "startup", "logstream")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the cs benchmarks.")
    parser.add_argument("--only", choices=BENCHES, action="append", help="run only this bench (repeatable)")
    parser.add_argument("--delivery-n", type=int, default=500, help="delivery: measured rounds (default 500)")
    parser.add_argument("--delivery-warmup", type=int, default=50, help="delivery: warm-up rounds (default 50)")
    parser.add_argument("--startup-n", type=int, default=15, help="startup: measured runs (default 15)")
    parser.add_argument("--startup-warmup", type=int, default=2, help="startup: warm-up runs (default 2)")
    parser.add_argument(
        "--logstream-lines",
        type=int,
        default=logstream.DEFAULT_LINES,
        help=f"logstream: lines printed (default {logstream.DEFAULT_LINES})",
    )
    parser.add_argument(
        "--logstream-down-timeout",
        type=float,
        default=logstream.DEFAULT_DOWN_TIMEOUT,
        help=f"logstream: CS_DELIVERY_TIMEOUT (s) with the server down (default {logstream.DEFAULT_DOWN_TIMEOUT:g})",
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    selected = args.only or list(BENCHES)
    results: list[BenchResult] = []
    if "delivery" in selected:
        results.append(delivery.run(n=args.delivery_n, warmup=args.delivery_warmup))
    if "startup" in selected:
        results.append(startup.run(n=args.startup_n, warmup=args.startup_warmup))
    if "logstream" in selected:
        results.append(logstream.run(lines=args.logstream_lines, down_timeout=args.logstream_down_timeout))
    emit(results, args.json)


if __name__ == "__main__":
    main()
