"""``python -m bench``: run every benchmark (or ``--only`` some) and print one report.

Owns only the selection and the shared output; each bench lives in its own module and also runs alone
(``python -m bench.delivery``, ``python -m bench.startup``, ``python -m bench.logstream``,
``python -m bench.journal``, ``python -m bench.fastpath``, ``python -m bench.scale``). Every bench that
needs a server starts its own ``nats-server``. The fastpath and scale benches (minutes) run only when
chosen with ``--only``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import delivery, fastpath, journal, logstream, scale, startup
from bench.report import BenchResult, add_common_args, emit

BENCHES = ("delivery", "startup", "logstream", "journal", "fastpath", "scale")
DEFAULT = ("delivery", "startup", "logstream", "journal")


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
    parser.add_argument("--journal-n", type=int, default=journal.DEFAULT_N, help="journal: lines")
    parser.add_argument("--fastpath-lines", type=int, default=fastpath.DEFAULT_LINES, help="fastpath: lines")
    parser.add_argument("--fastpath-rounds", type=int, default=fastpath.DEFAULT_ROUNDS, help="fastpath: rounds")
    parser.add_argument("--scale-lines", type=int, default=scale.DEFAULT_LINES, help="scale: lines per process")
    parser.add_argument("--scale-plot", type=Path, default=None, help="scale: write the PNG figure here")
    add_common_args(parser)
    args = parser.parse_args(argv)
    selected = args.only or list(DEFAULT)
    results: list[BenchResult] = []
    if "delivery" in selected:
        results.append(delivery.run(n=args.delivery_n, warmup=args.delivery_warmup))
    if "startup" in selected:
        results.append(startup.run(n=args.startup_n, warmup=args.startup_warmup))
    if "logstream" in selected:
        results.append(logstream.run(lines=args.logstream_lines, down_timeout=args.logstream_down_timeout))
    if "journal" in selected:
        results.append(journal.run(args.journal_n))
    if "fastpath" in selected:
        results.append(fastpath.run(args.fastpath_lines, args.fastpath_rounds))
    if "scale" in selected:
        results.append(scale.run(lines=args.scale_lines, plot=args.scale_plot))
    emit(results, args.json)


if __name__ == "__main__":
    main()
