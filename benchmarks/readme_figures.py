"""Write the README's measured figures from results files, so prose and numbers cannot drift.

Every figure the README quotes from a measurement sits between two marker comments,
``<!-- figures:NAME:start ... -->`` and ``<!-- figures:NAME:end -->``, and is written
there by this script from the results files given, never by hand:

- ``bench-quick``: ``results.json`` of ``switchyard bench --quick`` runs (the two tables);
- ``bench-full``: ``results.json`` of ``switchyard bench`` runs (sentences),
  ``bench-full-table``: the same runs' tables, and ``resilience``: their
  resilience scenarios' figures;
- ``overhead``: ``python -m switchyard.benchmarks.overhead --json FILE``;
- ``emulator``: ``python -m switchyard.benchmarks.emulator_throughput --json FILE``;
- ``telemetry``: ``python -m switchyard.benchmarks.telemetry_overhead [--stream] --json FILE``;
- ``instructions``: ``python -m switchyard.benchmarks.instructions --json FILE`` (every kind).

Give several files of each (one per run): a figure that varies is written as its
range over them. Blocks no file feeds are left as they are. Only complete runs
count (no ``--scenario``/``--policy`` subset, not interrupted); all the files of
a block must come from one machine and interpreter, which the block names.

Each start marker carries a digest of its block, so a hand edit shows:
``--check`` without files verifies every digest (the test suite does this), and
with files also that the README holds what the files give.

Run: ``python -m switchyard.benchmarks.readme_figures FILE... [--readme README.md] [--check | --print]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._figures import bench_block
from ._resilience import resilience_block
from ._sentences import (
    emulator_block,
    full_summary,
    instructions_block,
    overhead_block,
    replicas_block,
    telemetry_block,
)

__all__ = ["BLOCKS", "check", "main", "render", "rewrite"]

Report = Mapping[str, Any]

_QUICK_INTRO = "This is `switchyard bench --quick`, every figure the range over the runs"
_FULL_INTRO = "`switchyard bench` (30 s cells), every figure the range over the runs"

# Block name -> (which files feed it, how it is written).
BLOCKS: dict[str, tuple[str, Callable[[Sequence[Report]], str]]] = {
    "bench-quick": ("quick", lambda rs: bench_block(rs, _QUICK_INTRO)),
    "bench-full": ("full", full_summary),
    "bench-full-table": ("full", lambda rs: bench_block(rs, _FULL_INTRO)),
    "resilience": ("full", resilience_block),
    "replicas": ("full", replicas_block),
    "overhead": ("overhead", overhead_block),
    "emulator": ("emulator_throughput", emulator_block),
    "telemetry": ("telemetry_overhead", telemetry_block),
    "instructions": ("instructions", instructions_block),
}

_MARKED = re.compile(
    r"<!-- figures:(?P<name>[\w-]+):start(?P<note>[^>]*?)-->\n(?P<body>.*?)<!-- figures:(?P=name):end -->",
    re.S,
)
_DIGEST = re.compile(r"sha256=([0-9a-f]{12})")


class FiguresError(Exception):
    """A results file or the README cannot give the figures (the message says why)."""


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]


def _start(name: str, body: str) -> str:
    return (
        f"<!-- figures:{name}:start sha256={_digest(body)}; written by "
        "python -m switchyard.benchmarks.readme_figures from results files: do not edit -->"
    )


def _source(path: pathlib.Path, data: Any) -> str:
    """Which block family a results file feeds."""
    from ._report import FORMAT, mode

    if not isinstance(data, dict) or "kind" not in data or "machine" not in data:
        raise FiguresError(f"{path}: not a results file with its machine (written before they named it?)")
    if data["kind"] != "bench":
        if data["kind"] not in ("overhead", "emulator_throughput", "telemetry_overhead", "instructions"):
            raise FiguresError(f"{path}: results of {data['kind']!r}, which the README does not quote")
        return str(data["kind"])
    if data.get("format") != FORMAT:
        raise FiguresError(f"{path}: bench results format {data.get('format')}, not {FORMAT}: run it again")
    which = mode(data)
    if which == "custom":
        raise FiguresError(
            f"{path}: `{data['command']}` is not a complete quick or full run "
            "(a subset, other settings, or interrupted): the README quotes complete runs only"
        )
    return which


def load(paths: Sequence[pathlib.Path]) -> dict[str, list[Report]]:
    """The results files, by the block family they feed (``quick``, ``full``, ``overhead``...)."""
    grouped: dict[str, list[Report]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FiguresError(f"{path}: {exc}") from exc
        grouped.setdefault(_source(path, data), []).append(data)
    return grouped


def render(grouped: Mapping[str, Sequence[Report]]) -> dict[str, str]:
    """Each block the files feed, by name."""
    out = {}
    for name, (source, write) in BLOCKS.items():
        if grouped.get(source):
            try:
                out[name] = write(grouped[source])
            except ValueError as exc:
                raise FiguresError(f"block {name}: {exc}") from exc
    return out


def blocks(readme: str) -> dict[str, tuple[str, str | None]]:
    """The README's generated blocks: name -> (body, the digest its marker carries).

    Raises:
        FiguresError: a block appears twice.
    """
    found: dict[str, tuple[str, str | None]] = {}
    for match in _MARKED.finditer(readme):
        name = match["name"]
        if name in found:
            raise FiguresError(f"README: block {name!r} appears twice")
        digest = _DIGEST.search(match["note"])
        found[name] = (match["body"], digest[1] if digest else None)
    return found


def rewrite(readme: str, rendered: Mapping[str, str]) -> str:
    """The README with each rendered block written between its markers.

    Raises:
        FiguresError: a rendered block has no markers in the README.
    """
    present = blocks(readme)
    missing = sorted(set(rendered) - set(present))
    if missing:
        raise FiguresError(
            f"README has no markers for {', '.join(missing)}: add "
            + " and ".join(f"<!-- figures:{n}:start --> ... <!-- figures:{n}:end -->" for n in missing)
        )

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in rendered:
            return match[0]
        body = rendered[name]
        return f"{_start(name, body)}\n{body}<!-- figures:{name}:end -->"

    return _MARKED.sub(replace, readme)


def check(readme: str, rendered: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with the README's blocks: a digest that does not match its block (a hand edit),
    a missing block, or (given ``rendered``) a block that differs from what the files give."""
    problems = []
    present = blocks(readme)
    for name in BLOCKS:
        if name not in present:
            problems.append(f"block {name}: no markers in the README")
    for name, (body, digest) in present.items():
        if name not in BLOCKS:
            problems.append(f"block {name}: not a block this script writes")
        elif digest != _digest(body):
            problems.append(f"block {name}: edited by hand (its digest does not match); run the script again")
    for name, body in (rendered or {}).items():
        if name in present and present[name][0] != body:
            problems.append(f"block {name}: differs from what the results files give")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or ``--check``, or ``--print``) the README's figures; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m switchyard.benchmarks.readme_figures",
        description="Write the README's measured figures from results files (several runs each: ranges).",
    )
    parser.add_argument("files", nargs="*", type=pathlib.Path, metavar="FILE", help="results files")
    parser.add_argument("--readme", type=pathlib.Path, default=pathlib.Path("README.md"))
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true", help="change nothing; exit 1 if the README disagrees")
    what.add_argument("--print", action="store_true", help="print the blocks instead of writing them")
    args = parser.parse_args(argv)
    prog = "readme_figures"
    try:
        grouped = load(args.files)
        rendered = render(grouped)
        if args.print:
            for name, body in rendered.items():
                print(f"{_start(name, body)}\n{body}<!-- figures:{name}:end -->\n")
            return 0
        if not args.check and not rendered:
            parser.error("give the results files to write the figures from (or --check)")
        readme = args.readme.read_text(encoding="utf-8")
        if args.check:
            problems = check(readme, rendered)
            for problem in problems:
                print(f"{prog}: {args.readme}: {problem}", file=sys.stderr)
            return 1 if problems else 0
        args.readme.write_text(rewrite(readme, rendered), encoding="utf-8")
    except (FiguresError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    for name in rendered:
        source = BLOCKS[name][0]
        print(f"{args.readme}: wrote {name} from {len(grouped[source])} {source} results file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
