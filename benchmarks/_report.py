"""The bench's results file, and everything drawn from it.

``results.json`` holds every figure of every cell with where it was measured
(``_machine.provenance``). The plots and ``report.html`` are drawn from that file's
contents alone (:func:`render`), so a results file someone sends you redraws the
same report (``python -m switchyard.benchmarks.redraw``), and ``readme_figures``
quotes the same numbers.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from ._metrics import CellResult
from ._tables import cpu_ratio

__all__ = [
    "FORMAT",
    "REPORT",
    "RESULTS",
    "bare_of",
    "build",
    "cells_of",
    "mode",
    "read",
    "render",
    "write_json",
]

RESULTS = "results.json"
REPORT = "report.html"
# Of results.json. 2: provenance, impairments, per-request time to first token; 3: each cell's attempt log,
# and moving off is the first move that held (a tenth of the degraded period).
FORMAT = 3


def build(
    head: Mapping[str, Any],
    cells: Sequence[CellResult],
    bare: Mapping[str, Sequence[float]],
    settings: Mapping[str, Any],
    descriptions: Mapping[str, str],
    assumptions: Mapping[str, Any],
    elapsed: float,
    *,
    subset: bool,
    interrupted: bool,
) -> dict[str, Any]:
    """The results file's contents: ``head`` (provenance), the run's settings, the cells.

    ``subset``: the run was asked for fewer scenarios or policies than all;
    ``interrupted``: it stopped on Ctrl-C, after the cells it has.
    """
    return {
        **head,
        "format": FORMAT,
        "elapsed_s": elapsed,
        "subset": subset,
        "interrupted": interrupted,
        "settings": dict(settings),
        "scenarios": {name: descriptions[name] for name in dict.fromkeys(c.scenario for c in cells)},
        "policies": list(dict.fromkeys(c.policy for c in cells)),
        "assumptions": dict(assumptions),
        "baseline": {
            kind: {"cpu_us_per_request": sum(runs) / len(runs), "runs_cpu_us_per_request": list(runs)}
            for kind, runs in bare.items()
            if runs
        },
        "cells": [{**c.to_json(), "cpu_ratio_to_bare": cpu_ratio(c, bare)} for c in cells],
    }


def write_json(path: pathlib.Path, report: Mapping[str, Any]) -> None:
    """Every figure, as JSON."""
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")


def read(path: pathlib.Path) -> dict[str, Any]:
    """A bench results file.

    Raises:
        ValueError: the file is not one the bench wrote in this format.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("kind") != "bench":
        raise ValueError(f"{path} is not a `switchyard bench` results file")
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is results format {data.get('format')}, not {FORMAT}: run the bench again")
    return data


def cells_of(report: Mapping[str, Any]) -> list[CellResult]:
    """The cells of a results file's contents."""
    return [CellResult.from_json(cell) for cell in report["cells"]]


def bare_of(report: Mapping[str, Any]) -> dict[str, list[float]]:
    """The bare client's CPU runs per kind, as the tables take them."""
    return {kind: list(b["runs_cpu_us_per_request"]) for kind, b in report["baseline"].items()}


def mode(report: Mapping[str, Any]) -> str:
    """``quick``, ``full``, or ``custom`` (other cell lengths or rates, or a subset)."""
    settings = report["settings"]
    rate, duration = settings["rate_per_s"], settings["duration_s"]
    if rate == 40.0 and not report["interrupted"] and not report["subset"]:
        return {3.0: "quick", 30.0: "full"}.get(duration, "custom")
    return "custom"


def render(out: pathlib.Path, report: Mapping[str, Any]) -> list[pathlib.Path]:
    """Draw the plots and ``report.html`` from a results file's contents into ``out``."""
    from ._html import write_html
    from ._plots import write_plots

    cells = cells_of(report)
    scale = report["settings"]["time_scale"]
    note = (
        ""
        if scale == 1.0
        else f"time compressed {1 / scale:g}x: {report['settings']['duration_s']:g} s cells"
    )
    plots = write_plots(out, cells, note)
    return [*plots, write_html(out / REPORT, report, cells, plots)]
