"""The bench's results file and what is drawn from it: provenance, report.html, redraw."""

from __future__ import annotations

import base64
import json
import pathlib
import re
import sys

import pytest
from switchyard.benchmarks import redraw
from switchyard.benchmarks._bench import QUICK
from switchyard.benchmarks._machine import machine, provenance
from switchyard.benchmarks._plots import PLOTS
from switchyard.benchmarks._report import FORMAT, RESULTS, build, mode, read, render, write_json
from switchyard.benchmarks._scenarios import SCENARIOS, scenarios

from ._quick import Run

# Anything a browser would fetch: a src/href/srcset/action/poster/data attribute, or a CSS url() or
# @import, pointing off the page (http:, https:, protocol-relative //, file:).
_FETCHES = re.compile(
    r"""(?:\b(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?:https?:|//|file:))"""
    r"""|(?:url\(\s*["']?\s*(?:https?:|//|file:))|(?:@import)""",
    re.I,
)


def _report(cells_and_bare: Run, **overrides: object) -> dict[str, object]:
    cells, bare = cells_and_bare
    world = scenarios(QUICK.scale)
    report = build(
        provenance("bench", ["--quick"], "switchyard bench"),
        cells,
        bare,
        settings={
            "duration_s": QUICK.duration,
            "rate_per_s": QUICK.rate,
            "requests_per_cell": QUICK.requests,
            "time_scale": QUICK.scale,
            "seed": 0,
        },
        descriptions={name: s.description for name, s in world.items()},
        assumptions={"model": "gpt-4o-mini", "prices_usd_per_million": {"oneai": (0.1, 0.4)}},
        elapsed=79.0,
        subset=False,
        interrupted=False,
    )
    report.update(overrides)
    return report


def test_machine_names_cores_python_and_the_checkout() -> None:
    """A results file says which machine, interpreter and commit measured it."""
    m = machine()
    assert m["cores"] >= 1 and m["python"] == ".".join(map(str, sys.version_info[:3]))
    assert m["switchyard"] and m["platform"]
    assert m["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", m["git_commit"])
    head = provenance("bench", ["--quick"], "switchyard bench")
    assert head["kind"] == "bench" and head["command"] == "switchyard bench --quick"


def test_report_html_is_self_contained_and_shows_every_scenario(
    quick_run: Run, tmp_path: pathlib.Path
) -> None:
    """report.html fetches nothing (no http(s), no scripts, no external styles) and inlines every plot."""
    written = render(tmp_path, _report(quick_run))
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert tmp_path / "report.html" in written
    assert not _FETCHES.findall(page), _FETCHES.findall(page)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    for name in SCENARIOS:
        assert f"<b>{name}</b>" in page and f"<td>{name}</td>" in page, name
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(PLOTS) == len([p for p in written if p.suffix == ".png"])
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert "AMD" in page or "cores" in page
    assert "switchyard bench --quick" in page


def test_an_interrupted_run_says_so(quick_run: Run, tmp_path: pathlib.Path) -> None:
    """A run stopped by Ctrl-C is marked in its page and is no "quick" run to quote."""
    cells, bare = quick_run
    report = _report((cells[:4], bare), interrupted=True)
    render(tmp_path, report)
    assert "This run was interrupted" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert mode(report) == "custom" and mode(_report(quick_run)) == "quick"


def test_redraw_draws_the_same_files_from_a_results_file(quick_run: Run, tmp_path: pathlib.Path) -> None:
    """`python -m switchyard.benchmarks.redraw results.json` draws the plots and the page from the file."""
    write_json(tmp_path / RESULTS, _report(quick_run))
    assert read(tmp_path / RESULTS)["format"] == FORMAT
    out = tmp_path / "again"
    assert redraw.main([str(tmp_path / RESULTS), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*PLOTS, "report.html"])


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"kind": "overhead"}, "is not a `switchyard bench` results file"),
        ({"kind": "bench", "format": 1}, f"results format 1, not {FORMAT}"),
    ],
)
def test_redraw_refuses_other_files(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], content: dict[str, object], error: str
) -> None:
    """Another kind of file, or an older format, is a one-line error, exit 2."""
    (tmp_path / "x.json").write_text(json.dumps(content))
    assert redraw.main([str(tmp_path / "x.json")]) == 2
    assert error in capsys.readouterr().err
