"""The README stays true: its Python blocks run and CI runs its test command."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)


def test_readme_python_blocks_run_in_order() -> None:
    """Every ```python block runs, in order, in one namespace, and prints what it says."""
    blocks = _blocks("python")
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "__readme__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md:python-block-{i}", "exec"), namespace)
    printed = out.getvalue()
    assert "oneai deepseek-v3 ['ok']" in printed
    assert "1. oneai:qwen-max: expected $0.000245 (8 prompt x $0.6 + 100 output x $2.4 per 1M" in printed
    assert "2. oneai:glm-4 (fallback 1: glm-4): expected $0.000122" in printed
    assert "onetoken gpt-4o-mini None unknown" in printed
    assert "8 replies, 0 429s" in printed
    assert "8 replies on " in printed  # on Redis where one listens on 6379, else on local limits
    assert "oneai-sk-example" not in printed
    assert "did you mean 'gpt-4o-mini'?" in printed
    # The telemetry section: its span tree, then its request count.
    spans = [
        "attempt onellm onellm Overloaded",
        "attempt onetoken onetoken None",
        "chat gpt-4o-mini onetoken None",
    ]
    assert "\n".join([*spans, "1.0"]) in printed


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs exactly the test command the README gives."""
    (command,) = [b.strip() for b in _blocks("sh") if "pytest" in b]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci]


def test_readme_names_the_main_command() -> None:
    """The README's main command is the quick bench, and CI runs it too."""
    assert "switchyard bench --quick" in [b.strip() for b in _blocks("sh")]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^switchyard bench --quick\b", ci, flags=re.M)


def test_readme_images_exist() -> None:
    """Every image the README shows is in the repository."""
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    for image in images:
        assert (ROOT / image).is_file(), image
