"""Redraw a bench run's plots and ``report.html`` from its ``results.json``.

The plots and the page are drawn from the results file alone, so a file someone
sends you (or one from an earlier run) gives the same report.

Run: ``python -m switchyard.benchmarks.redraw bench-out/results.json [--out DIR]``
(``--out`` defaults to the results file's folder).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Redraw from the results file named in ``argv``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.benchmarks.redraw", description=__doc__)
    parser.add_argument("results", type=pathlib.Path, help="a results.json written by `switchyard bench`")
    parser.add_argument("--out", type=pathlib.Path, help="where to draw (default: the results file's folder)")
    args = parser.parse_args(argv)
    from ._report import read, render

    try:
        report = read(args.results)
    except (OSError, ValueError) as exc:
        print(f"redraw: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.results.parent
    out.mkdir(parents=True, exist_ok=True)
    for path in render(out, report):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
